"""`infrapower chain --png`: the SVG drawing rasterised, for people who
would rather look than read."""

import shutil

import pytest
from test_offline import run_cli


@pytest.mark.skipif(not shutil.which("rsvg-convert"), reason="needs librsvg2-bin (make install)")
def test_png_is_a_picture(tmp_path):
    png = tmp_path / "chain.png"
    result = run_cli(tmp_path, "--png", str(png))
    assert result.returncode in (0, 1), result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_png_into_a_directory_that_does_not_exist_is_one_line(tmp_path):
    result = run_cli(tmp_path, "--png", str(tmp_path / "no" / "such" / "dir.png"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
