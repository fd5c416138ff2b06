/* obfuscate_redis.h - redis and valkey command quantization and obfuscation, and the memcached
 * command, as the Go Agent does them (pkg/obfuscate redis.go, redis_tokenizer.go,
 * memcached.go) with the Rust port's additions (MIGRATE, HELLO, ACL, HSET by pairs,
 * case-insensitive ZADD flags). Loop thread, request arena only; any bytes accepted. */
#ifndef DDS_TRACE_OBFUSCATE_REDIS_H
#define DDS_TRACE_OBFUSCATE_REDIS_H
#include <stdbool.h>

#include "common/arena.h"
#include "common/slice.h"

/* The resource of a redis or valkey span: up to 3 command names (upper-cased, with the
 * sub-command of CLIENT, CLUSTER, COMMAND, CONFIG, DEBUG and SCRIPT), " ..." when there were
 * more or the tracer truncated the text. False only when the arena is exhausted. */
bool dds__redis_quantize(dds__slice in, dds__arena *arena, dds__slice *out);

/* redis.raw_command / valkey.raw_command: the values of the commands that carry data (SET's
 * value, AUTH's password, ...) become '?'; one line per command. False only on arena failure. */
bool dds__redis_obfuscate(dds__slice in, dds__arena *arena, dds__slice *out);

/* The same with every argument replaced: "CMD ?" (BITFIELD and CONFIG keep their sub-commands). */
bool dds__redis_remove_all_args(dds__slice in, dds__arena *arena, dds__slice *out);

/* memcached.command with keep_command: the text before the first "\r\n", spaces trimmed (the
 * value of a storage command follows that line). A slice of the input; never allocates. */
dds__slice dds__memcached_command(dds__slice in);
#endif
