#include "cli/reply_fields.h"

#include <json-c/json.h>

const char *field_str(json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) return "";
    return json_object_get_string(v);
}

bool field_bool(json_object *o, const char *key) {
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

uint64_t field_u64(json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) return 0;
    return json_object_get_uint64(v);
}

int64_t field_i64(json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) return 0;
    return json_object_get_int64(v);
}

bool field_has(json_object *o, const char *key) {
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && v;
}

json_object *field_object(json_object *o, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_object) ? v : NULL;
}
