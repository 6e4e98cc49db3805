"""Entra ID sign-in error codes (AADSTS numbers) mapped to the normalized authentication result.

Detections count failures by kind (a spray is many FAILED_BAD_PASSWORD / FAILED_BAD_LOGIN, MFA
fatigue is many FAILED_MFA), so the mapping decides what an analyst sees. Interrupts are not
failures: Entra logs them when a sign-in pauses for a step the user still has to take (MFA,
consent, account choice) and usually a success follows with the same correlation id.
"""

from __future__ import annotations

from enum import StrEnum


class AuthResult(StrEnum):
    """The normalized outcome of an authentication."""

    SUCCESS = "SUCCESS"
    FAILED_BAD_PASSWORD = "FAILED_BAD_PASSWORD"  # noqa: S105 - a result name, not a secret
    FAILED_BAD_LOGIN = "FAILED_BAD_LOGIN"
    FAILED_ACCOUNT_LOCKED = "FAILED_ACCOUNT_LOCKED"
    FAILED_ACCOUNT_DISABLED = "FAILED_ACCOUNT_DISABLED"
    FAILED_PASSWORD_EXPIRED = "FAILED_PASSWORD_EXPIRED"  # noqa: S105 - a result name
    FAILED_MFA = "FAILED_MFA"
    FAILED_BLOCKED_BY_POLICY = "FAILED_BLOCKED_BY_POLICY"
    FAILED_RISK = "FAILED_RISK"
    INTERRUPTED = "INTERRUPTED"
    FAILED_OTHER = "FAILED_OTHER"


ERROR_CODE_RESULTS: dict[int, AuthResult] = {
    # Success.
    0: AuthResult.SUCCESS,
    # Invalid username or password: the account exists, the password was wrong.
    50126: AuthResult.FAILED_BAD_PASSWORD,
    # Invalid or null password sent.
    50056: AuthResult.FAILED_BAD_PASSWORD,
    # Invalid client secret: a service principal's secret is its password.
    7000215: AuthResult.FAILED_BAD_PASSWORD,
    # Invalid client assertion (certificate credential) for a service principal.
    7000222: AuthResult.FAILED_BAD_PASSWORD,
    # The user account does not exist in the directory: a guessed or mistyped name.
    50034: AuthResult.FAILED_BAD_LOGIN,
    # The tenant named in the sign-in does not exist.
    90002: AuthResult.FAILED_BAD_LOGIN,
    # The account is locked (Smart Lockout, or too many attempts from a malicious IP).
    50053: AuthResult.FAILED_ACCOUNT_LOCKED,
    # The account is disabled by an administrator.
    50057: AuthResult.FAILED_ACCOUNT_DISABLED,
    # The password has expired and must be changed.
    50055: AuthResult.FAILED_PASSWORD_EXPIRED,
    # The on-premises password has expired (pass-through authentication).
    50144: AuthResult.FAILED_PASSWORD_EXPIRED,
    # Strong authentication required: the user is being sent to an MFA prompt.
    50074: AuthResult.INTERRUPTED,
    # MFA required because of a policy or a new location: the prompt is pending.
    50076: AuthResult.INTERRUPTED,
    # The user must register a method for MFA before continuing.
    50079: AuthResult.INTERRUPTED,
    # MFA enrolment required by the administrator: proof-up pending.
    50072: AuthResult.INTERRUPTED,
    # The MFA step failed: denied, timed out or wrong code (the MFA-fatigue signal).
    500121: AuthResult.FAILED_MFA,
    # MFA was required and the user never completed it (the "MFA denied" variant).
    50088: AuthResult.FAILED_MFA,
    # "Keep me signed in?" interrupt.
    50140: AuthResult.INTERRUPTED,
    # Blocked by a Conditional Access policy.
    53003: AuthResult.FAILED_BLOCKED_BY_POLICY,
    # Blocked by a Conditional Access policy on a security policy (for example authentication
    # strength or an unsupported method).
    530032: AuthResult.FAILED_BLOCKED_BY_POLICY,
    # Blocked by security defaults (legacy authentication or missing MFA registration).
    530035: AuthResult.FAILED_BLOCKED_BY_POLICY,
    # Sign-in interrupted by a password reset or password registration step.
    50125: AuthResult.INTERRUPTED,
    # An external security challenge (third-party MFA through Conditional Access) is pending.
    50158: AuthResult.INTERRUPTED,
    # Consent for the application's permissions has not been given yet: the prompt is pending.
    65001: AuthResult.INTERRUPTED,
    # The session expired or was invalidated by Conditional Access sign-in frequency; the user
    # has to sign in again but no credential was rejected.
    70044: AuthResult.FAILED_OTHER,
    # Seamless SSO: the desktop (Kerberos) SSO request could not be used.
    81016: AuthResult.FAILED_OTHER,
    # Administrator consent for the application is required and pending.
    90095: AuthResult.INTERRUPTED,
    # Device authentication required: the client retries with its device certificate.
    50097: AuthResult.INTERRUPTED,
    # Silent sign-in found no session to reuse; the application falls back to a prompt.
    50058: AuthResult.INTERRUPTED,
    # The user is asked to pick one of several signed-in accounts.
    16000: AuthResult.INTERRUPTED,
    # The application (client id) does not exist in the tenant: an unknown or guessed app.
    700016: AuthResult.FAILED_OTHER,
    # Conditional Access requires a compliant or managed device.
    530002: AuthResult.FAILED_BLOCKED_BY_POLICY,
    # Conditional Access requires a compliant device and this one is not.
    53000: AuthResult.FAILED_BLOCKED_BY_POLICY,
    # Conditional Access requires a domain-joined device.
    53001: AuthResult.FAILED_BLOCKED_BY_POLICY,
    # Conditional Access requires an approved client application.
    53002: AuthResult.FAILED_BLOCKED_BY_POLICY,
    # MFA registration blocked because of sign-in risk.
    53004: AuthResult.FAILED_RISK,
    # Blocked because of the user's risk in their home tenant.
    53011: AuthResult.FAILED_RISK,
    # The user is not assigned to the application and assignment is required.
    50105: AuthResult.FAILED_BLOCKED_BY_POLICY,
    # The session was revoked because the password changed or expired.
    50133: AuthResult.FAILED_OTHER,
    # The refresh token (grant) expired or was revoked: the client must sign in again.
    50173: AuthResult.FAILED_OTHER,
}


def result_for(error_code: int | None) -> AuthResult:
    """The normalized result of an Entra error code; unknown non-zero codes are FAILED_OTHER."""
    if error_code is None:
        return AuthResult.FAILED_OTHER
    return ERROR_CODE_RESULTS.get(error_code, AuthResult.FAILED_OTHER)
