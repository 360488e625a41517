/*
 * Reading the server's events back in unit tests (with json-c): one JSON
 * object exactly, and its string members.  Shared by the tests that look at
 * what a connection's queue holds (test_registry.c, test_session.c).
 */
#ifndef SB_TEST_JSON_EVENT_H
#define SB_TEST_JSON_EVENT_H

#include "check.h"

#include <json-c/json.h>
#include <stdio.h>

/* Parses exactly len bytes as one JSON object. */
static struct json_object *parse_exact(const char *p, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	CHECK(tok != NULL);
	o = json_tokener_parse_ex(tok, p, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		fprintf(stderr, "not one JSON value: %.*s\n", (int)len, p);
		CHECK(!"the event is one JSON value");
	}
	json_tokener_free(tok);
	CHECK(json_object_is_type(o, json_type_object));
	return o;
}

/* A string member, checked present and a string; its bytes and length. */
static const char *member_str(struct json_object *o, const char *name,
			      size_t *len)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, name, &v)) {
		fprintf(stderr, "no member \"%s\" in %s\n", name,
			json_object_to_json_string(o));
		CHECK(!"member present");
	}
	CHECK(json_object_is_type(v, json_type_string));
	*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

#endif
