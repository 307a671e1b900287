/*
 * check_config_int.c - unit tests of config_int.c: which literals libconfig
 * 1.5 truncates, what it makes of them, and where the tokenizer finds them
 * (not in comments, strings or names).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "check_main.h"

START_TEST(test_parse)
{
	static const struct {
		const char	*tok;
		bool		 big;
		int		 value;
	} cases[] = {
		{ "0", false, 0 },
		{ "2147483647", false, 0 },
		{ "-2147483648", false, 0 },
		{ "+2147483647", false, 0 },
		{ "0x7fffffff", false, 0 },
		{ "2147483648", true, -2147483647 - 1 },
		{ "-2147483649", true, 2147483647 },
		{ "4294967296", true, 0 },
		{ "4294971392", true, 4096 },
		{ "99999999999999999999", true, -1 },
		{ "0x100000000", true, 0 },
		{ "0XFFFFFFFF", true, -1 },
		{ "0x80000000", true, -2147483647 - 1 },
		/* Not integer literals libconfig stores in an int: */
		{ "5000000000L", false, 0 },
		{ "1.5", false, 0 },
		{ "1e10", false, 0 },
		{ ".5", false, 0 },
		{ "-", false, 0 },
		{ "+", false, 0 },
		{ "0x", false, 0 },
		{ "-0x100000000", false, 0 },
		{ "--4294967296", false, 0 },
		{ "4294967296abc", false, 0 },
	};
	size_t i;
	int v;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 12345;
		ck_assert_msg(bigint_parse(cases[i].tok, &v) == cases[i].big,
		    "%s: expected %s", cases[i].tok,
		    cases[i].big ? "big" : "not big");
		if (cases[i].big)
			ck_assert_msg(v == cases[i].value, "%s: %d, not %d",
			    cases[i].tok, v, cases[i].value);
		else
			ck_assert_int_eq(v, 12345);
	}
}
END_TEST

static struct bigint_list
scan_text(const char *text)
{
	struct bigint_list list = { NULL, 0 };
	FILE *fp = fmemopen((void *)text, strlen(text), "r");

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(bigint_scan(fp, "f.conf", &list), 0);
	fclose(fp);
	return list;
}

START_TEST(test_scan_skips_comments_strings_names)
{
	struct bigint_list list = scan_text(
	    "# 4294967296 in a comment\n"				/* 1 */
	    "a = 4294967297; // 4294967298\n"				/* 2 */
	    "/* 4294967299\n"						/* 3 */
	    "   4294967300 */ b = \"4294967301 \\\" 4294967302\n"	/* 4 */
	    "in the string 4294967303\";\n"				/* 5 */
	    "port4294967304 = 1; x-4294967305 = 2;\n"			/* 6 */
	    "c = -4294967306;\n"					/* 7 */
	    "@include \"4294967307.conf\"\n"				/* 8 */
	    "d = 5000000000L; e = 1.5e300; g = 1 / 2;\n"		/* 9 */
	    "h = 0x100000000;\n"					/* 10 */
	    "i = [ 1, 2147483648 ];");					/* 11 */

	ck_assert_uint_eq(list.n, 4);
	ck_assert_str_eq(list.v[0].text, "4294967297");
	ck_assert_uint_eq(list.v[0].line, 2);
	ck_assert_int_eq(list.v[0].value, 1);
	ck_assert_str_eq(list.v[0].file, "f.conf");
	ck_assert_str_eq(list.v[1].text, "-4294967306");
	ck_assert_uint_eq(list.v[1].line, 7);
	ck_assert_str_eq(list.v[2].text, "0x100000000");
	ck_assert_uint_eq(list.v[2].line, 10);
	ck_assert_str_eq(list.v[3].text, "2147483648");
	ck_assert_uint_eq(list.v[3].line, 11);
	bigint_list_clear(&list);
	ck_assert_ptr_null(list.v);
	ck_assert_uint_eq(list.n, 0);
}
END_TEST

/* An unterminated string or comment ends the scan, not the process. */
START_TEST(test_scan_unterminated)
{
	struct bigint_list list;

	list = scan_text("a = 4294967296; b = \"4294967297\\");
	ck_assert_uint_eq(list.n, 1);
	bigint_list_clear(&list);
	list = scan_text("a = 4294967296; /* 4294967297 *");
	ck_assert_uint_eq(list.n, 1);
	bigint_list_clear(&list);
	list = scan_text("");
	ck_assert_uint_eq(list.n, 0);
	bigint_list_clear(&list);
}
END_TEST

/* The text kept is cut at 63 bytes; the whole token is still one. */
START_TEST(test_scan_long_token)
{
	char text[200] = "a = ";
	struct bigint_list list;

	memset(text + 4, '9', 100);
	strcpy(text + 104, ";\nb = 3000000000;");
	list = scan_text(text);
	ck_assert_uint_eq(list.n, 2);
	ck_assert_uint_eq(strlen(list.v[0].text), 63);
	ck_assert_uint_eq(list.v[1].line, 2);
	bigint_list_clear(&list);
}
END_TEST

START_TEST(test_find)
{
	struct bigint_list list;

	list = scan_text("a = 4294967296;\nb = 4294967297;\n");
	ck_assert_uint_eq(list.n, 2);
	ck_assert_ptr_eq(bigint_find(&list, "f.conf", 1, 0), &list.v[0]);
	ck_assert_ptr_eq(bigint_find(&list, "f.conf", 2, 1), &list.v[1]);
	/* A real 0 or 1 on the same line is not the truncated literal. */
	ck_assert_ptr_null(bigint_find(&list, "f.conf", 1, 1));
	ck_assert_ptr_null(bigint_find(&list, "f.conf", 3, 0));
	ck_assert_ptr_null(bigint_find(&list, "g.conf", 1, 0));
	bigint_list_clear(&list);
}
END_TEST

static Suite *
config_int_suite(void)
{
	Suite *s = suite_create("config_int");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_parse);
	tcase_add_test(tc, test_scan_skips_comments_strings_names);
	tcase_add_test(tc, test_scan_unterminated);
	tcase_add_test(tc, test_scan_long_token);
	tcase_add_test(tc, test_find);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(config_int_suite)
