"""The batch CSV reader: each malformed file gives its exact error (line, column, message); good files read right.

These run the reader on files on disk, no database: `scan_file` is the first pass of `POST /v1/batches`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.domain.batch_csv import CheckedRow, ErrorSpool, RowError, Scan, checked_rows, safe_cell, scan_file
from shared.domain.errors import TooLarge
from shared.domain.job_input import JobSpec
from shared.settings import get_settings

KLING = "free-kling-ai-video-generation"
KNOWN = "prompt, profile, asset_urls, format, quality, language, external_id, meta_<name>"


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "jobs.csv"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def scan(tmp_path: Path, text: str | bytes, **limits: int) -> Scan:
    settings = get_settings().model_copy(update=limits) if limits else None
    return scan_file(write(tmp_path, text), settings)


def errors(tmp_path: Path, text: str | bytes) -> list[tuple[int, str | None, str]]:
    return [(e.line, e.column, e.message) for e in scan(tmp_path, text).errors]


def good_rows(tmp_path: Path) -> list[CheckedRow]:
    return [r for r in checked_rows(tmp_path / "jobs.csv", Scan()) if not r.errors]


def bad_rows(tmp_path: Path) -> list[CheckedRow]:
    return [r for r in checked_rows(tmp_path / "jobs.csv", Scan()) if r.errors]


@pytest.fixture()
def strict_guard(settings_env) -> None:
    """The production URL guard (the test env lets loopback through for the simulator)."""
    settings_env(REELMILL_OUTBOUND_ALLOW_PRIVATE="false")


# ---- the file as a whole ---------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    result = scan(tmp_path, b"")
    assert result.fatal
    assert errors(tmp_path, b"") == [(1, None, "the file is empty; the first line must be a header naming the columns")]


def test_blank_lines_and_a_bom_only_are_empty(tmp_path: Path) -> None:
    assert errors(tmp_path, b"\xef\xbb\xbf\r\n\r\n") == [
        (1, None, "the file is empty; the first line must be a header naming the columns")
    ]


def test_no_header(tmp_path: Path) -> None:
    text = f"A lighthouse at dusk,{KLING}\nA fox in snow,{KLING}\n"
    assert errors(tmp_path, text) == [(1, None, f"the first line must be a header naming the columns ({KNOWN})")]


def test_unknown_column(tmp_path: Path) -> None:
    assert errors(tmp_path, "prompt,colour\nA fox,red\n") == [
        (1, None, f"unknown column 'colour' (known columns: {KNOWN})")
    ]


def test_missing_prompt_column(tmp_path: Path) -> None:
    assert errors(tmp_path, f"profile,quality\n{KLING},high\n") == [
        (1, None, f"the required column 'prompt' is missing (known columns: {KNOWN})")
    ]


def test_duplicate_header_column_any_case(tmp_path: Path) -> None:
    assert errors(tmp_path, "prompt,quality,Prompt\na,high,b\n") == [
        (1, None, f"column 'Prompt' appears twice (columns 1 and 3) (known columns: {KNOWN})")
    ]


def test_nameless_column_and_bare_meta_prefix(tmp_path: Path) -> None:
    assert errors(tmp_path, "prompt,,meta_\na,b,c\n") == [
        (1, None, f"column 2 has no name; unknown column 'meta_' (known columns: {KNOWN})")
    ]


def test_header_only(tmp_path: Path) -> None:
    assert errors(tmp_path, "prompt,profile\n") == [(1, None, "the file has a header but no rows")]


def test_utf16_file(tmp_path: Path) -> None:
    data = "prompt\nA fox\n".encode("utf-16")
    assert errors(tmp_path, data) == [(1, None, "the file is UTF-16, not UTF-8; save it as 'CSV UTF-8'")]


def test_unclosed_quote(tmp_path: Path) -> None:
    result = scan(tmp_path, 'prompt,quality\nA fox,high\n"A cat\nthat never ends,low\n')
    assert result.fatal
    assert [(e.line, e.column, e.message) for e in result.errors] == [
        (
            3,
            None,
            "a quoted field that starts on line 3 or later is never closed: the file ends inside it "
            '(close it with another ", or write a quote inside a field as "")',
        )
    ]


def test_text_after_a_closing_quote(tmp_path: Path) -> None:
    result = scan(tmp_path, 'prompt,quality\nA fox,high\n"A cat" on a mat,low\n')
    assert result.fatal and result.fatal_error == result.errors[-1]
    assert result.errors[-1].line == 3 and "text after its closing quote" in result.errors[-1].message


def test_an_unclosed_quote_after_a_bad_row_is_the_file_problem(tmp_path: Path) -> None:
    """The rows read before the CSV broke keep their errors, and the file's own problem is known as such (the API
    names it first, not the blank prompt on an earlier line)."""
    result = scan(tmp_path, 'prompt,external_id\n"\n",e1\nA dog,e2\n"A cat,e3\nA bird,e4\n')
    assert [(e.line, e.column) for e in result.errors] == [(2, "prompt"), (5, None)]
    assert result.fatal_error is not None and result.fatal_error.line == 5
    assert "never closed" in result.fatal_error.message


def test_every_problem_of_a_row_is_reported(tmp_path: Path, strict_guard: None) -> None:
    text = "prompt,asset_urls,quality,external_id\n  ,ftp://x.test/a.jpg https://10.0.0.1/b.jpg,ultra,e1\n"
    assert errors(tmp_path, text) == [
        (2, "prompt", "must not be blank"),
        (2, "asset_urls", "URL 1 (ftp://x.test/a.jpg): scheme must be https or http, not 'ftp'"),
        (2, "asset_urls", "URL 2 (https://10.0.0.1/b.jpg): host '10.0.0.1' is a private address, which is not allowed"),
        (2, "quality", "'ultra' is not allowed; use 'low', 'medium' or 'high'"),
    ]


def test_a_line_with_a_nul_is_still_checked(tmp_path: Path) -> None:
    found = errors(tmp_path, b"prompt,quality\nA f\x00ox,ultra\n")
    assert found == [
        (2, None, "line 2 contains a NUL byte"),
        (2, "quality", "'ultra' is not allowed; use 'low', 'medium' or 'high'"),
    ]


def test_too_many_rows(tmp_path: Path) -> None:
    with pytest.raises(TooLarge) as caught:
        scan(tmp_path, "prompt\na\nb\nc\nd\n", batch_max_rows=3)
    assert caught.value.message == "the file has more than the limit of 3 rows"
    assert caught.value.field == "file"
    assert scan(tmp_path, "prompt\na\nb\nc\n", batch_max_rows=3).good == 3


def test_too_many_bytes(tmp_path: Path) -> None:
    text = "prompt\n" + "A fox in the snow\n" * 10
    with pytest.raises(TooLarge) as caught:
        scan(tmp_path, text, batch_max_bytes=len(text) - 1)
    assert caught.value.message == f"the file is larger than the limit of {len(text) - 1} bytes"
    assert scan(tmp_path, text, batch_max_bytes=len(text)).good == 10


# ---- one row -----------------------------------------------------------------------------------------------


def test_empty_prompt(tmp_path: Path) -> None:
    assert errors(tmp_path, "prompt,quality\n   ,high\n") == [(2, "prompt", "must not be blank")]


def test_prompt_too_long(tmp_path: Path) -> None:
    limit = get_settings().max_prompt_chars
    assert errors(tmp_path, "prompt\n" + "x" * (limit + 1) + "\n") == [
        (2, "prompt", f"is longer than {limit} characters")
    ]


def test_unknown_profile(tmp_path: Path) -> None:
    assert errors(tmp_path, "prompt,profile\nA fox,tiktok-maker\n") == [
        (
            2,
            "profile",
            "unknown profile 'tiktok-maker'; known profiles: ai-video-generator-free-kapwing, "
            "free-kling-ai-video-generation",
        )
    ]


def test_bad_url(tmp_path: Path) -> None:
    assert errors(tmp_path, "prompt,asset_urls\nA fox,ftp://files.example.com/a.jpg\n") == [
        (2, "asset_urls", "URL 1 (ftp://files.example.com/a.jpg): scheme must be https or http, not 'ftp'")
    ]


def test_url_with_a_format_the_profile_refuses(tmp_path: Path) -> None:
    found = errors(tmp_path, f"prompt,profile,asset_urls\nA fox,{KLING},https://93.184.216.34/x.exe\n")
    assert found[0][:2] == (2, "asset_urls")
    assert found[0][2].startswith(
        "URL 1 (https://93.184.216.34/x.exe): format 'exe' is not accepted by profile free-kling-ai-video-generation"
    )


def test_forbidden_url_address(tmp_path: Path, strict_guard: None) -> None:
    text = "prompt,asset_urls\nA fox,https://93.184.216.34/ok.jpg https://127.0.0.1/a.jpg\n"
    assert errors(tmp_path, text) == [
        (
            2,
            "asset_urls",
            "URL 2 (https://127.0.0.1/a.jpg): host '127.0.0.1' is a loopback address, which is not allowed",
        )
    ]


def test_bad_format_value(tmp_path: Path) -> None:
    assert errors(tmp_path, "prompt,format\nA fox,mov\n") == [(2, "format", "'mov' is not allowed; use 'mp4'")]


def test_bad_quality_and_language_in_one_row(tmp_path: Path) -> None:
    assert errors(tmp_path, "prompt,quality,language\nA fox,ultra,english!\n") == [
        (2, "quality", "'ultra' is not allowed; use 'low', 'medium' or 'high'"),
        (2, "language", "must be a language tag such as 'en', 'zh' or 'pt-BR' (at most 16 characters)"),
    ]


def test_duplicate_external_id(tmp_path: Path) -> None:
    text = "prompt,external_id\nA fox,a-1\nA cat,a-2\nA dog,a-1\n"
    assert errors(tmp_path, text) == [(4, "external_id", "duplicate external_id 'a-1' (first on line 2)")]


def test_external_id_too_long(tmp_path: Path) -> None:
    assert errors(tmp_path, "prompt,external_id\nA fox," + "x" * 201 + "\n") == [
        (2, "external_id", "is longer than 200 characters")
    ]


def test_too_many_assets(tmp_path: Path) -> None:
    urls = ";".join(f"https://93.184.216.34/{i}.jpg" for i in range(get_settings().max_assets + 1))
    assert errors(tmp_path, f'prompt,asset_urls\nA fox,"{urls}"\n') == [
        (2, "asset_urls", f"at most {get_settings().max_assets} assets per job")
    ]


def test_metadata_too_big(tmp_path: Path) -> None:
    limit = get_settings().max_metadata_bytes
    assert errors(tmp_path, "prompt,meta_notes\nA fox," + "n" * limit + "\n") == [
        (2, "meta_notes", f"metadata is larger than {limit} bytes of JSON")
    ]


def test_wrong_number_of_cells(tmp_path: Path) -> None:
    assert errors(tmp_path, "prompt,quality\nA fox,high,extra\nA cat\n") == [
        (2, None, "the row has 3 cells; the header has 2 columns"),
        (3, None, "the row has 1 cells; the header has 2 columns"),
    ]


def test_not_utf8_row(tmp_path: Path) -> None:
    data = b"prompt,quality\nA fox,high\n" + "Un café,low\n".encode("latin-1") + b"A cat,low\n"
    result = scan(tmp_path, data)
    assert [(e.line, e.column, e.message) for e in result.errors] == [
        (3, None, "line 3 is not valid UTF-8 (byte 0xe9 at byte 7); save the file as 'CSV UTF-8'")
    ]
    assert (result.rows, result.good, result.bad_rows) == (3, 2, 1)


def test_nul_byte(tmp_path: Path) -> None:
    assert errors(tmp_path, b"prompt\nA f\x00ox\n") == [(2, None, "line 2 contains a NUL byte")]


def test_every_error_is_listed_with_its_row(tmp_path: Path) -> None:
    text = "prompt,quality\n,high\nA fox,high\nA cat,best\n ,low\n"
    result = scan(tmp_path, text)
    assert [(e.line, e.column) for e in result.errors] == [(2, "prompt"), (4, "quality"), (5, "prompt")]
    assert (result.rows, result.good, result.bad_rows, result.error_count) == (4, 1, 3, 3)
    assert all(isinstance(e, RowError) for e in result.errors)


# ---- what good files mean ----------------------------------------------------------------------------------


def test_quoted_newlines_are_kept_and_later_lines_stay_right(tmp_path: Path) -> None:
    text = 'prompt,external_id\n"Scene one:\na fox\n\nScene two: a cat",x1\nA dog,x2\n,x3\n'
    result = scan(tmp_path, text)
    assert [(e.line, e.column, e.message) for e in result.errors] == [(7, "prompt", "must not be blank")]
    rows = good_rows(tmp_path)
    assert [r.line for r in rows] == [2, 6]
    assert [r.line for r in bad_rows(tmp_path)] == [7]
    assert rows[0].spec.prompt == "Scene one:\na fox\n\nScene two: a cat"
    assert rows[1].external_id == "x2"


def test_bom_header_case_and_order_free(tmp_path: Path) -> None:
    text = "\ufeffQuality,EXTERNAL_ID,Prompt,Profile\r\nlow,e-1,A fox,free-kling-ai-video-generation\r\n"
    result = scan(tmp_path, text)
    assert (result.good, result.error_count) == (1, 0)
    row = good_rows(tmp_path)[0]
    assert (row.line, row.external_id) == (2, "e-1")
    assert (row.spec.output.quality, row.spec.profile, row.spec.prompt) == ("low", KLING, "A fox")


def test_blank_lines_between_rows_are_skipped_but_counted(tmp_path: Path) -> None:
    text = "prompt\nA fox\n\n,\nA cat\n"  # "," is a row of empty cells, as spreadsheets write them
    result = scan(tmp_path, text)
    assert (result.rows, result.good) == (2, 2)
    assert [r.line for r in good_rows(tmp_path)] == [2, 5]


def test_a_row_means_what_the_same_json_job_means(tmp_path: Path) -> None:
    text = (
        "prompt,profile,asset_urls,format,quality,language,external_id,meta_Campaign,meta_owner\n"
        f"  A fox in snow  ,{KLING},https://93.184.216.34/a.jpg; https://93.184.216.34/b.png  ,mp4,medium,pt-BR,"
        "ext-9,Spring,\n"
    )
    assert scan(tmp_path, text).good == 1
    row = good_rows(tmp_path)[0]
    same = JobSpec.model_validate(
        {
            "prompt": "  A fox in snow  ",
            "profile": KLING,
            "assets": ["https://93.184.216.34/a.jpg", "https://93.184.216.34/b.png"],
            "output": {"format": "mp4", "quality": "medium"},
            "language": "pt-BR",
            "metadata": {"Campaign": "Spring"},  # an empty meta cell sets no key
        }
    )
    assert row.spec == same
    assert row.external_id == "ext-9"


def test_defaults_for_empty_cells(tmp_path: Path) -> None:
    scan(tmp_path, "prompt,profile,quality,language,asset_urls\nA fox,,,,\n")
    assert good_rows(tmp_path)[0].spec == JobSpec(prompt="A fox")


def test_error_list_is_bounded_but_counted(tmp_path: Path) -> None:
    result = scan(tmp_path, "prompt,quality\n" + "A fox,bad\n" * 1500)
    assert result.error_count == 1500 and len(result.errors) == 1000 and result.bad_rows == 1500


def test_bad_rows_spool_to_disk_with_their_errors(tmp_path: Path) -> None:
    write(tmp_path, "prompt,quality,external_id\nA fox,high,a\n,best,b\nA cat,low,c\n")
    with ErrorSpool(tmp_path / "errors.spool") as spool:
        for row in checked_rows(tmp_path / "jobs.csv", Scan()):
            if row.errors:
                spool.write(row)
    assert list(spool.read()) == [
        (3, "b", [("prompt", "must not be blank"), ("quality", "'best' is not allowed; use 'low', 'medium' or 'high'")])
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        (None, ""),
        (7, "7"),
    ],
)
def test_result_cells_are_escaped_against_formulas(value: object, expected: str) -> None:
    assert safe_cell(value) == expected


def test_asset_urls_cost_no_dns_lookup(tmp_path: Path, strict_guard: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """NemoVideo fetches assets, not reelmill: a name is not resolved (one that does not resolve from here is no
    error), while an IP literal in a forbidden range, in any of its spellings, is refused."""
    monkeypatch.setattr("socket.getaddrinfo", lambda *a, **k: pytest.fail("an asset URL was looked up"))
    rows = [f"Clip {i},https://cdn.test/{i}.jpg https://nowhere.invalid/{i}.png" for i in range(50)]
    rows += ["Bad,https://10.0.0.7/a.jpg", "Bad,https://2130706433/a.jpg", "Bad,https://[::ffff:169.254.169.254]/a"]
    result = scan(tmp_path, "prompt,asset_urls\n" + "\n".join(rows) + "\n")
    assert result.good == 50
    assert [(e.line, e.message) for e in result.errors] == [
        (52, "URL 1 (https://10.0.0.7/a.jpg): host '10.0.0.7' is a private address, which is not allowed"),
        (53, "URL 1 (https://2130706433/a.jpg): host '2130706433' is a loopback address, which is not allowed"),
        (
            54,
            "URL 1 (https://[::ffff:169.254.169.254]/a): host '::ffff:169.254.169.254' is a link-local (embedded "
            "in IPv6) address, which is not allowed",
        ),
    ]
