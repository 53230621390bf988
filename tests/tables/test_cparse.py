"""The C subset reader, on small hand-written snippets in both NUT styles."""

import pytest

from infrapower.tables import cparse


def parse(text, **kwargs):
    return cparse.parse_source(text, "snippet.c", **kwargs)


def test_comments_and_string_concatenation_with_macros():
    result = parse(r'''
        #define PREFIX ".1.3.6.1.4.1.99"  /* vendor */
        #define OUTLET_STATUS PREFIX ".2.1" // status column
        static snmp_info_t t[] = {
            /* "outlet.%i.ignored" in a comment */
            { "outlet.%i.status", ST_FLAG_STRING, SU_INFOSIZE,
              OUTLET_STATUS ".%i", "http://x//y", SU_FLAG_OK | SU_OUTLET, NULL },
            { NULL, 0, 0, NULL, NULL, 0, NULL }
        };
    ''', preprocessor=_with_infosize())
    (row,) = result["tables"]["t"]
    assert row["oid"] == ".1.3.6.1.4.1.99.2.1.%i"
    assert row["dfl"] == "http://x//y"
    assert row["info_len"] == 128
    assert row["flags"] == ["SU_FLAG_OK", "SU_OUTLET"]
    assert row["info_flags"] == ["ST_FLAG_STRING"]


def _with_infosize():
    pp = cparse.Preprocessor(filename="snippet.c")
    pp.define("SU_INFOSIZE", "128")
    return pp


def test_unresolved_length_symbol_is_kept_as_text():
    (row,) = parse('''
        snmp_info_t t[] = { { "x", 0, SOME_LEN, NULL, NULL, 0, NULL }, { NULL } };
    ''')["tables"]["t"]
    assert row["info_len"] == "SOME_LEN"


def test_define_values_for_commands_and_line_continuation():
    (row,) = parse('''
        #define DO_OFF \\
            "0"
        snmp_info_t t[] = {
            { "outlet.%i.load.off", 0, 1, ".1.2.%i", DO_OFF,
              SU_TYPE_CMD | SU_OUTLET, NULL },
            { NULL, 0, 0, NULL, NULL, 0, NULL } };
    ''')["tables"]["t"]
    assert row["dfl"] == "0"
    assert row["flags"] == ["SU_TYPE_CMD", "SU_OUTLET"]


def test_flag_symbols_are_never_expanded_even_when_defined():
    pp = cparse.Preprocessor()
    pp.define("SU_OUTLET", "(1UL << 11)")
    pp.define("MY_FLAGS", "SU_FLAG_OK | (SU_OUTLET)")
    (row,) = parse('''
        snmp_info_t t[] = { { "a", (ST_FLAG_RW | ST_FLAG_STRING), 1, NULL, NULL, MY_FLAGS, NULL },
                            { NULL, 0, 0, NULL, NULL, 0, NULL } };
    ''', preprocessor=pp)["tables"]["t"]
    assert row["flags"] == ["SU_FLAG_OK", "SU_OUTLET"]
    assert row["info_flags"] == ["ST_FLAG_RW", "ST_FLAG_STRING"]


def test_numeric_flags_are_refused():
    with pytest.raises(cparse.CParseError, match="flag symbols"):
        parse('snmp_info_t t[] = { { "a", 0, 1, NULL, NULL, 2048, NULL } };')


def test_conditional_blocks():
    text = '''
        static info_lkp_t l[] = {
        #if 0
            { 9, "never", NULL, NULL },
        #endif
        #if WITH_UNMAPPED_DATA_POINTS || (defined DEBUG)
            { 8, "unmapped", NULL, NULL },
        #endif
        #if WITH_SNMP_LKP_FUN
            { 0, "dummy", some_fun, NULL },
        #else /* plain pairs */
            { 1, "on", NULL, NULL },
        #endif
        #ifdef UNDEFINED_THING
            { 7, "ifdef", NULL, NULL },
        #elif 1 + 1 == 2
            { 2, "elif", NULL, NULL },
        #else
            { 6, "else", NULL, NULL },
        #endif
        #ifndef UNDEFINED_THING
            { 3, "ifndef", NULL, NULL },
        #endif
            { 0, NULL, NULL, NULL }
        };
    '''
    rows = parse(text)["lookups"]["l"]
    assert [(r["value"], r["string"]) for r in rows] == [(1, "on"), (2, "elif"), (3, "ifndef")]


def test_debug_defined_enables_its_branch():
    pp = cparse.Preprocessor()
    pp.define("DEBUG", "")
    rows = parse('''
        info_lkp_t l[] = {
        #if WITH_UNMAPPED_DATA_POINTS || (defined DEBUG)
            { 8, "debug", NULL, NULL },
        #endif
            { 0, NULL, NULL, NULL } };
    ''', preprocessor=pp)["lookups"]["l"]
    assert [r["string"] for r in rows] == ["debug"]


def test_nested_conditionals_inside_a_false_branch_stay_off():
    rows = parse('''
        info_lkp_t l[] = {
        #if 0
        #  if 1
            { 1, "nested", NULL, NULL },
        #  else
            { 2, "nested-else", NULL, NULL },
        #  endif
        #else
            { 3, "outer-else", NULL, NULL },
        #endif
            { 0, NULL, NULL, NULL } };
    ''')["lookups"]["l"]
    assert [r["string"] for r in rows] == ["outer-else"]


def test_master_style_macros_and_sentinels():
    result = parse('''
        static info_lkp_t st[] = {
            info_lkp_default(1, "on"),
            info_lkp_default(2, "off"),
            info_lkp_fun_vp2s(3, "dummy", helper_fun),
            info_lkp_sentinel
        };
        static snmp_info_t tab[] = {
            snmp_info_default("outlet.%i.status", ST_FLAG_STRING, 1.0,
                ".1.3.%i.%i",
                NULL, SU_FLAG_OK | SU_OUTLET | SU_TYPE_DAISY_1, &st[0]),
            snmp_info_sentinel
        };
    ''')
    assert [(r["value"], r["string"], r["functions"]) for r in result["lookups"]["st"]] == [
        (1, "on", []), (2, "off", []), (3, "dummy", ["helper_fun"])]
    (row,) = result["tables"]["tab"]
    assert row == {
        "info": "outlet.%i.status", "info_flags": ["ST_FLAG_STRING"], "info_len": 1.0,
        "oid": ".1.3.%i.%i", "dfl": None,
        "flags": ["SU_FLAG_OK", "SU_OUTLET", "SU_TYPE_DAISY_1"], "lookup": "st",
    }


def test_280_style_plain_braces_with_function_pointers():
    rows = parse('''
        static info_lkp_t st[] = {
            { 1, "on", NULL, NULL },
            { 0, "dummy", helper_fun, NULL },
            { 0, NULL, NULL, NULL }
        };
    ''')["lookups"]["st"]
    assert [(r["value"], r["string"], r["functions"]) for r in rows] == [
        (1, "on", []), (0, "dummy", ["helper_fun"])]


def test_casts_parentheses_and_negative_values():
    result = parse('''
        info_lkp_t l[] = { { -1, "error", NULL, NULL }, { (2), ((const char *)"x"), NULL, NULL },
                           { 0, NULL, NULL, NULL } };
        snmp_info_t t[] = { { (char *)"a", 0, (0.1), (char *)".1.2", (char *)NULL, 0, (info_lkp_t *)&l[0] },
                            { NULL, 0, 0, NULL, NULL, 0, NULL } };
    ''')
    assert [(r["value"], r["string"]) for r in result["lookups"]["l"]] == [(-1, "error"), (2, "x")]
    (row,) = result["tables"]["t"]
    assert (row["info"], row["info_len"], row["oid"], row["dfl"], row["lookup"]) == (
        "a", 0.1, ".1.2", None, "l")


def test_lookup_pointer_into_the_middle_is_refused():
    with pytest.raises(cparse.CParseError, match="element 2"):
        parse('''
            #define IDX 2
            snmp_info_t t[] = { { "a", 0, 1, NULL, NULL, 0, &l[IDX] } };
        ''')


def test_mib2nut_definitions_sharing_a_table_and_null_sysoid():
    result = parse('''
        #define VER "0.5"
        #define SYSOID_A ".1.3.6.1.4.1.20677.1"
        snmp_info_t shared_mib[] = { snmp_info_sentinel };
        /* mib2nut_info_t commented = { "no", VER, NULL, NULL, shared_mib, NULL, NULL }; */
        mib2nut_info_t first = { "one", VER, NULL, ".1.2.0", shared_mib, SYSOID_A, NULL };
        mib2nut_info_t second = { "two", VER, NULL, NULL, shared_mib, NULL, alarms };
    ''')
    assert result["tables"]["shared_mib"] == []
    assert result["mib2nut"] == {
        "first": {"mib_name": "one", "mib_version": "0.5", "oid_pwr_status": None,
                  "oid_auto_check": ".1.2.0", "snmp_info": "shared_mib",
                  "sysOID": ".1.3.6.1.4.1.20677.1", "alarms_info": None},
        "second": {"mib_name": "two", "mib_version": "0.5", "oid_pwr_status": None,
                   "oid_auto_check": None, "snmp_info": "shared_mib",
                   "sysOID": None, "alarms_info": "alarms"},
    }


def test_probe_order_pointer_array_and_extern_declarations():
    result = parse('''
        extern mib2nut_info_t first;
        static mib2nut_info_t *mib2nut[] = {
            &first,   /* comes from a.c */
        #if 0
            &disabled,
        #endif
            &second,
            NULL
        };
    ''')
    assert result["pointer_arrays"] == {"mib2nut": ["first", "second"]}
    assert result["mib2nut"] == {}


def test_include_callback_sees_header_macros():
    def include(name, pp):
        assert name == "vendor-mib.h"
        pp.run('#define VENDOR_OID ".1.3.6.1.4.1.42"')

    (row,) = parse('''
        #include "vendor-mib.h"
        #include <stdio.h>
        snmp_info_t t[] = { { "a", 0, 1, VENDOR_OID ".1", NULL, 0, NULL }, snmp_info_sentinel };
    ''', include=include)["tables"]["t"]
    assert row["oid"] == ".1.3.6.1.4.1.42.1"


def test_unbalanced_conditionals_are_errors():
    with pytest.raises(cparse.CParseError, match="unterminated"):
        parse("#if 1\nint x;\n")
    with pytest.raises(cparse.CParseError, match="without #if"):
        parse("#endif\n")


def test_function_like_macros_count_as_defined_but_do_not_expand():
    pp = cparse.Preprocessor()
    pp.run("#define info_lkp_default(_1, _2) {_1, _2}\n")
    assert pp.is_defined("info_lkp_default")
    assert "info_lkp_default" not in pp.macros
