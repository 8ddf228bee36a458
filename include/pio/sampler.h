/*
 * sampler.h - choosing the next token from a row of logits, and cutting the
 * generated text at stop strings.
 *
 * A sampler is per sequence: it holds the PRNG state (seeded, so the same
 * seed gives the same tokens) and scratch buffers sized for the vocabulary.
 * Processing follows transformers / vLLM:
 *     penalties -> temperature -> top-k -> top-p -> min-p -> draw
 * Filtered tokens get probability 0; the draw is over the renormalized rest.
 * Rows may be wider than the tokenizer's vocabulary (embedding rows padded
 * to a multiple of 64 or 128): ids >= n_valid are never chosen.
 */
#ifndef PIO_SAMPLER_H
#define PIO_SAMPLER_H

#include "pio/pio.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pio_sampler_params {
    float temperature;        /* <= 0: greedy (argmax after penalties) */
    int top_k;                /* <= 0: off */
    float top_p;              /* >= 1: off; in (0, 1) keeps the smallest set of mass >= top_p */
    float min_p;              /* <= 0: off; keeps p >= min_p * p_max */
    float repetition_penalty; /* 1: off. HF semantics: logit > 0 ? logit / r : logit * r,
                               * once for each distinct token in the window */
    float presence_penalty;   /* OpenAI semantics: logit -= presence * (count > 0) */
    float frequency_penalty;  /* logit -= frequency * count */
    int penalty_last_n;       /* penalty window: the last n history tokens; -1 = all, 0 = none */
    uint64_t seed;
} pio_sampler_params;

/* Greedy, no penalties, window -1 (all), seed 0. */
void pio_sampler_params_default(pio_sampler_params *p);

typedef struct pio_sampler pio_sampler;

/*
 * A sampler for rows of n_vocab logits of which ids [0, n_valid) are real
 * tokens. Checks the parameters (PIO_STATUS_ERR_INVALID_ARG naming the
 * field: NaN, top_p <= 0, min_p > 1, repetition_penalty <= 0,
 * penalty_last_n < -1, n_valid outside [1, n_vocab]). Allocates O(n_vocab).
 */
pio_status pio_sampler_new(const pio_sampler_params *p, int n_vocab, int n_valid,
                           pio_sampler **out);

void pio_sampler_free(pio_sampler *s);

/* Restart the PRNG from `seed` (as if just created with it). */
void pio_sampler_reseed(pio_sampler *s, uint64_t seed);

/*
 * The next token. logits: [n_vocab], modified in place (penalties and
 * temperature applied, ids >= n_valid set to -inf). history: the tokens so
 * far (prompt + generated; ids outside [0, n_vocab) are ignored), of which
 * the last penalty_last_n are used for penalties. Greedy picks the lowest
 * id among equal maxima. NaN logits count as -inf. Returns -1, with a
 * message, only when no valid id has a logit above -inf.
 * Temperatures in (0, 1e-6) count as greedy (the draw would be the argmax;
 * dividing by them could overflow). Ties in top-k go to the lower id, so
 * top_k = 1 is greedy.
 * Cost: O(n_valid + window) expected per call, nothing sorts the vocabulary:
 * top-k is a heap (k <= 1024) or a quickselect, top-p a quickselect on
 * probability mass, min-p a threshold. Sampling without top-k computes one
 * expf per valid id (about 1.5 ms for 152k ids on one core).
 */
int32_t pio_sampler_sample(pio_sampler *s, float *logits, const int32_t *history, int n_history);

/*
 * The distribution pio_sampler_sample would draw from: probs [n_vocab]
 * gets each token's probability after every filter (0 for filtered and
 * padded ids; greedy puts 1 on the argmax). Does not advance the PRNG.
 * logits are modified as by pio_sampler_sample. Returns the number of
 * tokens with nonzero probability (0 when no valid logit is above -inf).
 */
int pio_sampler_probs(pio_sampler *s, float *logits, const int32_t *history, int n_history,
                      float *probs);

/* ---- stop strings ---------------------------------------------------------
 *
 * A matcher watches the detokenized text stream for any of a set of stop
 * strings. Each pushed chunk gives back the text that is safe to show now:
 * a suffix that could still become a stop string is held back until the
 * next chunk decides it. When a stop string completes, the text before it
 * is released, the stop string and everything after it are dropped, and
 * the matcher stays stopped. Matching is on bytes; with UTF-8 input and
 * UTF-8 stop strings a held-back suffix always starts on a character
 * boundary.
 */

typedef struct pio_stop_matcher pio_stop_matcher;

typedef struct pio_stop_result {
    const char *text;   /* safe to emit now; owned by the matcher, valid until its next call */
    size_t len;
    int stop_index;     /* index of the stop string hit (now or before), -1 if none */
} pio_stop_result;

/* A matcher for `n_stops` stop strings (copied; each non-empty, else
 * PIO_STATUS_ERR_INVALID_ARG). n_stops = 0 passes all text through. */
pio_status pio_stop_matcher_new(const char *const *stops, int n_stops, pio_stop_matcher **out);

/* Same, from a NULL-terminated list (NULL = none). */
pio_status pio_stop_matcher_new_list(const char *const *stops, pio_stop_matcher **out);

void pio_stop_matcher_free(pio_stop_matcher *m);

/*
 * Feed `len` bytes of generated text. On a hit, out->text holds the text
 * before the stop string and out->stop_index says which one: the stop
 * string that completes first in the stream (ending at the same byte: the
 * longer, then the lower index), so the result does not depend on how the
 * text is chunked. After a hit, further pushes emit nothing. Cost:
 * O((held + len) * total length of the stop strings) in the worst case.
 */
pio_status pio_stop_matcher_push(pio_stop_matcher *m, const char *text, size_t len,
                                 pio_stop_result *out);

/* End of generation: release any held-back text (none after a hit). */
pio_status pio_stop_matcher_flush(pio_stop_matcher *m, pio_stop_result *out);

/* Forget held text and any hit, for a new generation with the same stops. */
void pio_stop_matcher_reset(pio_stop_matcher *m);

#ifdef __cplusplus
}
#endif

#endif /* PIO_SAMPLER_H */
