/* json.h - the logs agent's validator of POST /v1/input bodies: a JSON array of objects, each
 * with "message" (a string) and "timestamp" (an integer, Unix ms); any other key is kept as it
 * is. Entries are handed out as slices of the input (never copied, never re-encoded). */
#ifndef DDS_LOGS_JSON_H
#define DDS_LOGS_JSON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting allowed inside one body, the array itself counted. The validator keeps its own stack
 * (one byte per level), so depth costs no C stack; the bound keeps what the intake gets sane. */
#define DDS__LOGS_JSON_MAX_DEPTH 128
#define DDS__LOGS_JSON_WHY_MAX 128

/* Called once per entry of a valid body, in order: the entry's JSON text from '{' to '}', a
 * slice of the body valid while the body is. */
typedef void (*dds__logs_entry_fn)(void *user, const char *entry, size_t len);

/*
 * Check body[0..len) (not NUL-terminated; never read past len). Returns the number of entries
 * (0 for "[]") or -1 with `why` (NUL-terminated, at most DDS__LOGS_JSON_WHY_MAX bytes with the
 * NUL) saying what is wrong and at which byte. on_entry (may be NULL) is called only when the
 * whole body is valid, after it has been checked: a bad entry rejects the whole body, as the
 * Rust logs agent does. Strings must be valid UTF-8 without raw control characters. Allocates
 * nothing. Any thread.
 */
long dds__logs_json_entries(const char *body, size_t len, dds__logs_entry_fn on_entry, void *user, char *why);
#endif
