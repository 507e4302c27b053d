"""Group detection for the rig's OIDC-protected MLflow (OIDC_GROUP_DETECTION_PLUGIN).

mlflow-oidc-auth provisions a bearer user only if the token puts it in an allowed group. Tokens
from the rig IdP carry a `groups` claim; GitHub Actions ID tokens carry none, so a raw GitHub token
(trusted directly through AUTH_PROVIDERS) is placed in the users' group here. Only the claims the
plugin has already validated are read.
"""

import os

GITHUB_ISSUER = os.environ.get("RIG_GHA_ISSUER", "http://127.0.0.1:5063")
USERS_GROUP = os.environ.get("RIG_OIDC_USERS_GROUP", "mlflow-users")


def get_user_groups(access_token, token_response=None):
    claims = (token_response or {}).get("claims") or {}
    if claims.get("iss") == GITHUB_ISSUER:
        return [USERS_GROUP]
    groups = claims.get("groups") or []
    return [g for g in groups if isinstance(g, str)]
