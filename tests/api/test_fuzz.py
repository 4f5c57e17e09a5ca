"""Property-based fuzz of the whole API from its own OpenAPI schema (schemathesis): whatever
it generates, no 5xx, and every response matches the documented status codes, content types
and schemas. Run through schemathesis's CLI: its pytest plugin does not support pytest 9."""

import re
import subprocess
import sys
from pathlib import Path


def test_no_server_errors_and_no_schema_violations(fleet, tmp_path):
    command = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{fleet.base_url}/openapi.json",
               "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
               "response_schema_conformance",
               "--max-examples", "40", "--request-timeout", "120", "--seed", "20261125", "--no-color"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    report = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    counts = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert counts and int(counts[1]) == int(counts[2]) > 200, report  # every operation really exercised
