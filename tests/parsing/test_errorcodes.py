"""Every Entra error code in the table maps to the result the issue asks for (one test each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubsight.parsing import errorcodes
from hubsight.parsing.errorcodes import ERROR_CODE_RESULTS, AuthResult, result_for

# Written out independently of the table so that a changed mapping fails its own test.
EXPECTED = {
    0: "SUCCESS",
    50126: "FAILED_BAD_PASSWORD",
    50056: "FAILED_BAD_PASSWORD",
    7000215: "FAILED_BAD_PASSWORD",
    7000222: "FAILED_BAD_PASSWORD",
    50034: "FAILED_BAD_LOGIN",
    90002: "FAILED_BAD_LOGIN",
    50053: "FAILED_ACCOUNT_LOCKED",
    50057: "FAILED_ACCOUNT_DISABLED",
    50055: "FAILED_PASSWORD_EXPIRED",
    50144: "FAILED_PASSWORD_EXPIRED",
    50074: "INTERRUPTED",
    50076: "INTERRUPTED",
    50079: "INTERRUPTED",
    50072: "INTERRUPTED",
    500121: "FAILED_MFA",
    50088: "FAILED_MFA",
    50140: "INTERRUPTED",
    53003: "FAILED_BLOCKED_BY_POLICY",
    530032: "FAILED_BLOCKED_BY_POLICY",
    530035: "FAILED_BLOCKED_BY_POLICY",
    50125: "INTERRUPTED",
    50158: "INTERRUPTED",
    65001: "INTERRUPTED",
    70044: "FAILED_OTHER",
    81016: "FAILED_OTHER",
    90095: "INTERRUPTED",
    50097: "INTERRUPTED",
    50058: "INTERRUPTED",
    16000: "INTERRUPTED",
    700016: "FAILED_OTHER",
    530002: "FAILED_BLOCKED_BY_POLICY",
    53000: "FAILED_BLOCKED_BY_POLICY",
    53001: "FAILED_BLOCKED_BY_POLICY",
    53002: "FAILED_BLOCKED_BY_POLICY",
    53004: "FAILED_RISK",
    53011: "FAILED_RISK",
    50105: "FAILED_BLOCKED_BY_POLICY",
    50133: "FAILED_OTHER",
    50173: "FAILED_OTHER",
}


@pytest.mark.parametrize(("code", "result"), sorted(EXPECTED.items()), ids=str)
def test_error_code_maps_to_result(code: int, result: str) -> None:
    assert result_for(code) == result


def test_every_code_in_the_table_has_a_test() -> None:
    assert set(ERROR_CODE_RESULTS) == set(EXPECTED)


def test_unknown_and_missing_codes_are_failed_other() -> None:
    assert result_for(99999) is AuthResult.FAILED_OTHER
    assert result_for(None) is AuthResult.FAILED_OTHER


def test_every_result_name_is_used() -> None:
    assert {str(result) for result in AuthResult} == set(EXPECTED.values())


def test_each_code_has_a_comment() -> None:
    lines = Path(errorcodes.__file__).read_text().splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.split(":")[0].isdigit() and stripped.endswith(","):
            assert lines[index - 1].strip().startswith("#"), f"no comment above {stripped}"
