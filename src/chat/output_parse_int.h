/*
 * output_parse_int.h - private helpers of the output parser (output_parse.h).
 */
#ifndef PIO_CHAT_OUTPUT_PARSE_INT_H
#define PIO_CHAT_OUTPUT_PARSE_INT_H

#include "chat/output_parse.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* A growable byte string, always NUL-terminated once non-empty. */
typedef struct pio_sb {
    char *s;
    size_t len, cap;
} pio_sb;

/* Append; false when out of memory (the buffer is unchanged). */
bool pio_sb_add(pio_sb *b, const char *s, size_t n);
bool pio_sb_adds(pio_sb *b, const char *s);
/* Append s[0..n) as a JSON string literal (quotes, escapes; UTF-8 kept). */
bool pio_sb_add_json_string(pio_sb *b, const char *s, size_t n);
void pio_sb_clear(pio_sb *b);
void pio_sb_free(pio_sb *b);

/* True when `props` declares parameter `key` a string (string, str, text,
 * varchar, char, enum): its value is the raw text. */
bool pio_schema_is_string(const cJSON *props, const char *key);

/*
 * Append the JSON text of argument `key` = val[0..n), typed by the schema
 * `props` (the function's parameters.properties object, or NULL). When the
 * value does not fit its declared type it is appended as a string and
 * why[0..why_cap) says so (why is "" otherwise). False only when out of
 * memory.
 */
bool pio_value_to_json(const cJSON *props, const char *key, const char *val, size_t n,
                       pio_sb *out, char *why, size_t why_cap);

#endif
