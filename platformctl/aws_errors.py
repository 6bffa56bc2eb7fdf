"""Why an AWS call could not be answered, in one line: the one place that turns botocore errors
into the messages `preflight`, the cost estimate (`--live-prices`) and `models push` print.

A library module: commands import it, it imports no command. botocore is imported here, so the
callers on the offline `plan` path (cost, prices) import this module only when they call AWS.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)

NO_CREDENTIALS = "no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use SSO)"

# What a boto3 call raises when AWS (or the network) says no; anything else is a bug.
AWS_ERRORS = (BotoCoreError, ClientError)
# The API could not be reached at all (network, endpoint override), as opposed to refused.
UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)

DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden"}
BAD_CREDENTIAL_CODES = {
    "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
    "AuthFailure", "SignatureDoesNotMatch", "InvalidSignatureException",
}


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def explain_error(exc: BaseException, action: str) -> str:
    """One line saying why an AWS call could not be answered, naming the IAM action if denied."""
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return NO_CREDENTIALS
    if isinstance(exc, NoRegionError):
        return "no AWS region (pass --region)"
    if isinstance(exc, UNREACHABLE):
        return f"AWS API not reachable ({exc})"
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        if code in DENIED_CODES:
            return f"permission denied ({code}): needs {action}"
        if code in BAD_CREDENTIAL_CODES:
            return f"credentials rejected ({code}): {message}".rstrip(": ")
        return f"{action} failed ({code}): {message}".rstrip(": ")
    if isinstance(exc, BotoCoreError):
        return f"{action} failed: {exc}"
    return f"{action} failed: {type(exc).__name__}: {exc}"
