/* Fields of a monitor's JSON reply, read leniently: a client of an older
 * or newer monitor shows what is there (a missing field reads as empty,
 * zero or false). */
#ifndef RVISOR_CLI_REPLY_FIELDS_H
#define RVISOR_CLI_REPLY_FIELDS_H

#include <stdbool.h>
#include <stdint.h>

struct json_object;

const char *field_str(struct json_object *o, const char *key); /* "" unless a string */
bool field_bool(struct json_object *o, const char *key);
uint64_t field_u64(struct json_object *o, const char *key);
int64_t field_i64(struct json_object *o, const char *key);
bool field_has(struct json_object *o, const char *key);        /* present and not null */
struct json_object *field_object(struct json_object *o, const char *key); /* NULL unless an object */

#endif
