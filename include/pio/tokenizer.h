/*
 * tokenizer.h - Hugging Face tokenizer.json: byte-level BPE with added
 * tokens, NFC normalizer, Split/ByteLevel pre-tokenizers, ByteLevel decoder,
 * and a streaming decoder that never emits half a UTF-8 character.
 */
#ifndef PIO_TOKENIZER_H
#define PIO_TOKENIZER_H

#include "pio/pio.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pio_tokenizer pio_tokenizer;

/*
 * Load `path`: a tokenizer.json, or a directory holding one. Errors name the
 * file and the JSON field at fault.
 */
pio_status pio_tokenizer_load(const char *path, pio_tokenizer **out);

/* Same from a JSON string in memory; `name` is used in messages (fuzz target). */
pio_status pio_tokenizer_load_from_memory(const char *json, size_t len, const char *name,
                                          pio_tokenizer **out);

void pio_tokenizer_free(pio_tokenizer *tok);

/*
 * Encode UTF-8 `text` (`len` bytes) as transformers does with
 * add_special_tokens=False: added tokens are matched as whole strings first,
 * the rest is normalized, pre-tokenized and BPE-merged. Invalid UTF-8 fails
 * with PIO_STATUS_ERR_UTF8 naming the byte offset. *ids is malloc'ed; the
 * caller frees it.
 */
pio_status pio_tokenizer_encode(const pio_tokenizer *tok, const char *text, size_t len,
                                int32_t **ids, size_t *n_ids);

/*
 * Decode ids to UTF-8 text (malloc'ed, NUL-terminated). Special added tokens
 * are dropped when `skip_special`. Byte sequences that are not valid UTF-8
 * become U+FFFD, as Hugging Face does. Ids out of range are an error.
 */
pio_status pio_tokenizer_decode(const pio_tokenizer *tok, const int32_t *ids, size_t n_ids,
                                bool skip_special, char **text, size_t *len);

/* Number of ids the tokenizer knows (base vocabulary + added tokens): max id + 1. */
int32_t pio_tokenizer_n_vocab(const pio_tokenizer *tok);

/* Id of the token whose content is exactly `token` (vocab or added), or -1. */
int32_t pio_tokenizer_token_to_id(const pio_tokenizer *tok, const char *token);

/* The raw token string of `id` (vocab form, e.g. "Ġthe"), or NULL. */
const char *pio_tokenizer_id_to_token(const pio_tokenizer *tok, int32_t id);

/* True for added tokens marked "special": true. */
bool pio_tokenizer_is_special(const pio_tokenizer *tok, int32_t id);

/*
 * The bytes `id` decodes to on its own (the ByteLevel decoder applied, no
 * UTF-8 repair: a token may hold part of a character), *len of them, not
 * NUL-terminated; valid as long as the tokenizer. NULL for an unknown id.
 */
const char *pio_tokenizer_token_bytes(const pio_tokenizer *tok, int32_t id, size_t *len);

/* ---- streaming decode ---------------------------------------------------- */

typedef struct pio_detok pio_detok;

/* A decoder for one stream of ids. */
pio_status pio_detok_new(const pio_tokenizer *tok, bool skip_special, pio_detok **out);
void pio_detok_free(pio_detok *d);

/*
 * Feed one id. On return *text and *len hold the bytes that became complete
 * UTF-8 with this id (possibly 0 bytes); they stay valid until the next call.
 * Bytes of an incomplete character wait for the next ids.
 */
pio_status pio_detok_push(pio_detok *d, int32_t id, const char **text, size_t *len);

/* End of stream: pending bytes that never completed come out as U+FFFD. */
pio_status pio_detok_flush(pio_detok *d, const char **text, size_t *len);

/* Forget pending bytes (start a new stream). */
void pio_detok_reset(pio_detok *d);

/* ---- UTF-8 --------------------------------------------------------------- */

/* Offset of the first invalid UTF-8 byte in s[0..len), or -1 if all valid. */
int64_t pio_utf8_check(const char *s, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* PIO_TOKENIZER_H */
