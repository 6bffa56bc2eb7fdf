"""platformctl: the operator CLI of ai-platform (`python -m platformctl ...`)."""
