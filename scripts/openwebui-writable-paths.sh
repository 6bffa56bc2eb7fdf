#!/usr/bin/env bash
# Which paths OpenWebUI writes when it runs as the pod runs it: uid/gid 10001, read-only root,
# writable only where the Deployment mounts volumes. Prints every write attempt (path prefix,
# syscall, result) and whether the server worked. docs/security.md ("OpenWebUI's writable paths")
# says what the result was for the pinned release and why; re-run it when openWebUi.imageTag moves.
#
# Not part of `make test`: it needs root (a private mount namespace), strace, unshare, setpriv,
# curl, python3.11 and about 3 GB under $WORK. It reaches PyPI once (pip) and otherwise only
# 127.0.0.1: OFFLINE_MODE keeps OpenWebUI from fetching models, and a tiny random
# sentence-transformer stands in for the embedding model so the start-up load and an upload run.
#
# Usage: sudo scripts/openwebui-writable-paths.sh [version]    (default 0.11.0)
set -euo pipefail

VERSION=${1:-0.11.0}
WORK=${WORK:-/var/tmp/openwebui-paths}   # not under /tmp: the pod's /tmp is an emptyDir here too
PYTHON=${PYTHON:-python3.11}
APP_UID=10001
REPO=$(cd "$(dirname "$0")/.." && pwd)
# The pod's writable paths, as components/openwebui.py mounts them.
DATA=/app/backend/data STATIC=/app/backend/open_webui/static

[[ $(id -u) == 0 ]] || { echo "run as root (it needs a mount namespace)" >&2; exit 1; }
mkdir -p "$WORK"

# --- 1. the release, from PyPI: wheel (backend + built frontend) and sdist (Dockerfile, start.sh) --
if [[ ! -x $WORK/venv/bin/open-webui ]]; then
  "$PYTHON" -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install -q "torch==2.13.0" 2>>"$WORK/pip.log"   # the CPU build, as the image's
  "$WORK/venv/bin/pip" install -q "open-webui==$VERSION" hatchling 2>>"$WORK/pip.log"
fi
if [[ ! -f $WORK/src/backend/start.sh ]]; then
  # pip unpacks the sdist, then its build hook needs npm: a failing stand-in stops it at once and
  # --no-clean keeps the unpacked tree.
  mkdir -p "$WORK/fake-npm" "$WORK/pip-tmp"
  printf '#!/bin/sh\nexit 1\n' > "$WORK/fake-npm/npm"; chmod +x "$WORK/fake-npm/npm"
  PATH=$WORK/fake-npm:$PATH TMPDIR=$WORK/pip-tmp "$WORK/venv/bin/pip" download -q --no-clean --no-deps \
    --no-binary :all: --no-build-isolation "open-webui==$VERSION" -d "$WORK/pip-tmp" >/dev/null 2>&1 || true
  src=$(ls -d "$WORK"/pip-tmp/pip-download-*/open-webui_* | head -1)
  rm -rf "$WORK/src"; mv "$src" "$WORK/src"; rm -rf "$WORK/pip-tmp" "$WORK/src/node_modules"
fi
grep -q "\"version\": \"$VERSION\"" "$WORK/src/package.json"

# The image's layout (Dockerfile: WORKDIR /app/backend, COPY ./backend ., frontend build at
# /app/build), owned by root as with the default UID=0, plus its chgrp/chmod of the static dir.
site=$("$WORK/venv/bin/python" -c 'import open_webui, os; print(os.path.dirname(open_webui.__file__))')
rm -rf "$WORK/app"; mkdir -p "$WORK/app"
cp -a "$WORK/src/backend" "$WORK/app/backend"; cp -a "$site/frontend" "$WORK/app/build"
cp "$WORK/src/CHANGELOG.md" "$WORK/src/package.json" "$WORK/app/"
chown -R 0:0 "$WORK/app"; chmod -R go-w "$WORK/app"; chmod -R g=u "$WORK/app/backend/open_webui/static"

# --- 2. the environment: the Dockerfile's ENV lines plus the Deployment's env from the plan --------
env_file=$WORK/env
sed -n '/^FROM python/,$p' "$WORK/src/Dockerfile" | "$WORK/venv/bin/python" -c '
import re, sys
# Comment lines inside a continued instruction are dropped, as Docker does.
text = "\n".join(l for l in sys.stdin.read().splitlines() if not l.lstrip().startswith("#"))
text = re.sub(r"\\\n", " ", text)
args = {"USE_OLLAMA": "false", "USE_CUDA": "false", "USE_SLIM": "false", "USE_CUDA_VER": "cu128",
        "USE_EMBEDDING_MODEL": "sentence-transformers/all-MiniLM-L6-v2", "USE_RERANKING_MODEL": "",
        "USE_AUXILIARY_EMBEDDING_MODEL": "TaylorAI/bge-micro-v2", "BUILD_HASH": "dev-build"}
env = {}
for line in text.splitlines():
    if line.startswith("ENV "):
        for k, v in re.findall(r"(\w+)=(\"[^\"]*\"|\S*)", line[4:]):
            v = v.strip("\"")
            v = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), args.get(m.group(1), "")), v)
            env[k] = v
for k, v in env.items():
    print(f"{k}={v}")' > "$env_file"
(cd "$REPO" && .venv/bin/python -m platformctl plan --stack dev --out "$WORK/plan" >/dev/null)
"$WORK/venv/bin/python" - "$WORK/plan/manifests/deployment-openwebui-open-webui.yaml" >> "$env_file" <<'EOF'
import sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))["spec"]["template"]["spec"]
for e in spec["containers"][0]["env"]:
    if "valueFrom" in e:
        print(f"{e['name']}=throwaway{e['name'].lower().replace('_', '')}0123456789")  # Secret values
    elif e["name"] == "OPENAI_API_BASE_URLS":
        print("OPENAI_API_BASE_URLS=http://127.0.0.1:9/v1")  # loopback only; nothing listens
    else:
        print(f"{e['name']}={e['value']}")
print("HOST=127.0.0.1\nOFFLINE_MODE=true\nHF_HUB_OFFLINE=1")
print(f"PATH={sys.prefix}/bin:/usr/local/bin:/usr/bin:/bin")
EOF

# --- 3. the volumes as the kubelet prepares them (fsGroup), a stand-in embedding model, the seed --
vols=$WORK/volumes; rm -rf "$vols"; mkdir -p "$vols"/{data,static,tmp}
"$WORK/venv/bin/python" - "$vols/data/cache/embedding/models" 2>"$WORK/model.log" <<'EOF'
import os, sys, tempfile
from transformers import BertConfig, BertModel, BertTokenizerFast
from sentence_transformers import SentenceTransformer, models
repo = os.path.join(sys.argv[1], "models--sentence-transformers--all-MiniLM-L6-v2")
commit = "0" * 40
os.makedirs(os.path.join(repo, "refs")); open(os.path.join(repo, "refs", "main"), "w").write(commit)
tmp = tempfile.mkdtemp()
words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"] + [chr(c) for c in range(97, 123)]
open(os.path.join(tmp, "vocab.txt"), "w").write("\n".join(words) + "\n")
BertTokenizerFast(vocab_file=os.path.join(tmp, "vocab.txt")).save_pretrained(tmp)
BertModel(BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)).save_pretrained(tmp)
word = models.Transformer(tmp, max_seq_length=64)
SentenceTransformer(modules=[word, models.Pooling(word.get_word_embedding_dimension())]).save(
    os.path.join(repo, "snapshots", commit))
EOF
chown -R $APP_UID:$APP_UID "$vols"; chmod 2775 "$vols/data" "$vols/static"; chmod 1777 "$vols/tmp"
# The init container seed-static, its exact command, as the pod's uid.
seed=$("$WORK/venv/bin/python" -c 'import sys, yaml; print(" ".join(yaml.safe_load(open(sys.argv[1]))["spec"]["template"]["spec"]["initContainers"][0]["command"]))' \
  "$WORK/plan/manifests/deployment-openwebui-open-webui.yaml")
[[ $seed == "cp -R $STATIC/. /seed/" ]] || { echo "unexpected init command: $seed" >&2; exit 1; }
setpriv --reuid=$APP_UID --regid=$APP_UID --clear-groups cp -R "$WORK/app/backend/open_webui/static/." "$vols/static/"

# --- 4. run start.sh as uid 10001 on a read-only root with only the volumes writable -------------
base=$("$WORK/venv/bin/python" -c 'import sys; print(sys.base_prefix)')
rootfs=$WORK/rootfs; mkdir -p "$rootfs"
log=$WORK/server.log trace=$WORK/strace.log
unshare -m bash -s > "$log" 2>&1 <<EOF &
set -e
mount --make-rprivate /
mount -t tmpfs -o mode=0755 tmpfs "$rootfs"
for d in bin sbin lib lib32 lib64 usr etc var opt; do
  if [ -L /\$d ]; then ln -s "\$(readlink /\$d)" "$rootfs/\$d"
  elif [ -d /\$d ]; then mkdir "$rootfs/\$d"; mount --rbind /\$d "$rootfs/\$d"; mount -o remount,bind,ro "$rootfs/\$d"; fi
done
mkdir -p "$rootfs"/{dev,proc,tmp,root,app}
mount --rbind /dev "$rootfs/dev"; mount --rbind /proc "$rootfs/proc"
# HOME=/root as in the image: root's and not writable; the interpreter stays reachable if it lives there
mount -t tmpfs -o mode=0711 tmpfs "$rootfs/root"
case "$base" in /root/*) mkdir -p "$rootfs$base"; chmod -R 711 "$rootfs/root"; mount --bind "$base" "$rootfs$base"; mount -o remount,bind,ro "$rootfs$base";; esac
mount -o remount,ro "$rootfs/root"
mount --bind "$WORK/app" "$rootfs/app"; mount -o remount,bind,ro "$rootfs/app"
mount --bind "$vols/data" "$rootfs$DATA"
mount --bind "$vols/static" "$rootfs$STATIC"
mount --bind "$vols/tmp" "$rootfs/tmp"
mount -o remount,ro "$rootfs"
exec chroot "$rootfs" strace -f -qq -e signal=none -o /dev/fd/3 \
  -e trace=open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,rmdir,symlink,symlinkat,link,linkat,chmod,fchmodat,truncate,utimensat,mknodat \
  setpriv --reuid=$APP_UID --regid=$APP_UID --clear-groups env -i \$(cat "$env_file" | tr '\n' ' ') bash /app/backend/start.sh 3>"$trace"
EOF
runner=$!
stop() { for c in $(pgrep -P $runner); do kill "$c" 2>/dev/null || true; done; sleep 3; kill $runner 2>/dev/null || true; }
trap stop EXIT

# --- 5. use it once: health, pages, static files, sign-up, models, an upload embedded -------------
U=http://127.0.0.1:8080
for _ in $(seq 1 150); do curl -sf $U/health >/dev/null && break; kill -0 $runner 2>/dev/null || { tail -30 "$log"; exit 1; }; sleep 2; done
check() { printf '%-40s %s\n' "$1" "$2"; }
check "GET /health" "$(curl -s $U/health)"
for p in /ready / /static/favicon.png /static/fonts/NotoSans-Regular.ttf /static/assets/pdf-style.css /static/swagger-ui/swagger-ui.css /api/config; do
  check "GET $p" "$(curl -s -o /dev/null -w '%{http_code}' $U$p)"; done
token=$(curl -s -X POST $U/api/v1/auths/signup -H 'Content-Type: application/json' \
  -d '{"email":"admin@example.com","password":"Throwaway-Passw0rd!","name":"Admin"}' | "$WORK/venv/bin/python" -c 'import sys, json; print(json.load(sys.stdin)["token"])')
check "GET /api/models" "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" $U/api/models)"
printf 'hello world\n' > "$WORK/upload.txt"
curl -s -H "Authorization: Bearer $token" -F file=@"$WORK/upload.txt" $U/api/v1/files/ >/dev/null
sleep 15
check "upload processed" "$(curl -s -H "Authorization: Bearer $token" $U/api/v1/files/ | grep -o '"status":"[a-z]*"' | head -1)"
stop; trap - EXIT

# --- 6. every write attempt, by path prefix ---------------------------------------------------------
echo; echo "write attempts (where: syscall:result counts):"
"$WORK/venv/bin/python" - "$trace" "$DATA" "$STATIC" /tmp <<'EOF'
import collections, re, sys
calls = re.compile(r'^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)(?:\s+(\w+))?')
seen = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1], errors="replace"):
    m = calls.match(line)
    if not m or not (paths := re.findall(r'"([^"]*)"', m.group(2))):
        continue
    call, args, err = m.group(1), m.group(2), m.group(4)
    if call in ("open", "openat") and not re.search(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC", args):
        continue
    path = paths[-1] if call.startswith(("rename", "link", "symlink")) else paths[0]
    if path.startswith(("/dev/null", "/proc/")):
        continue
    volume = [v for v in sys.argv[2:] if path == v or path.startswith(v + "/")]
    where = (f"{volume[0]} (volume)" if volume else
             path.split("/open_webui/")[0] + "/open_webui/**/__pycache__" if "/__pycache__" in path else
             "/".join(path.split("/")[:4]) if path.startswith("/") else "(relative) " + path)
    seen[where][f"{call}:{err or 'ok'}"] += 1
for prefix in sorted(seen):
    print(f"  {prefix}  {dict(seen[prefix])}")
EOF
echo; echo "errors in the server log:"; grep -i -E "error|denied|read-only" "$log" | grep -v "127.0.0.1:9" | sort | uniq -c || echo "  none"
