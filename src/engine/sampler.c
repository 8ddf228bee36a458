/*
 * sampler.c - next-token selection: penalties, temperature, top-k, top-p,
 * min-p, and a seeded draw (see include/pio/sampler.h for the contract).
 *
 * Nothing sorts the vocabulary. The pipeline works on a candidate list of
 * (logit, weight, id): top-k is a heap (small k) or a quickselect (large k)
 * over the row, top-p a quickselect that partitions by probability mass
 * instead of sorting, min-p a threshold against the maximum. Weights are
 * exp(logit - max logit); probabilities are normalized only for the draw.
 * Every step is O(n_valid) expected.
 */
#include "pio/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* top_k up to this uses a heap over the logits (one compare per id);
 * larger k a quickselect over the candidate array. */
#define SAMPLER_HEAP_MAX_K 1024

/* Temperatures below this behave as greedy: dividing by them could push
 * logits to +inf, and the draw would be the argmax anyway. */
#define SAMPLER_MIN_TEMPERATURE 1e-6f

typedef struct sampler_cand {
    float logit;     /* after penalties and temperature */
    float w;         /* exp(logit - max logit), set once the candidates are known */
    int32_t id;
} sampler_cand;

struct pio_sampler {
    pio_sampler_params p;
    int n_vocab;               /* logits per row */
    int n_valid;               /* ids [0, n_valid) may be chosen */
    uint64_t rng[4];           /* xoshiro256** state */
    sampler_cand *cand;        /* [n_valid] scratch, rebuilt each call */
    int32_t *counts;           /* [n_vocab] window counts; all zero between calls */
};

void pio_sampler_params_default(pio_sampler_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = 0.0f;
    p->top_k = 0;
    p->top_p = 1.0f;
    p->min_p = 0.0f;
    p->repetition_penalty = 1.0f;
    p->presence_penalty = 0.0f;
    p->frequency_penalty = 0.0f;
    p->penalty_last_n = -1;
    p->seed = 0;
}

/* ---- PRNG: xoshiro256** seeded through splitmix64 (Blackman & Vigna,
 * "Scrambled linear pseudorandom number generators", 2018). -------------- */

static uint64_t splitmix64_next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Uniform double in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4])
{
    return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53;
}

void pio_sampler_reseed(pio_sampler *s, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64_next(&x);
}

/* ---- construction -------------------------------------------------------- */

/* Check `p` field by field; the message names the field and the rule. */
static pio_status sampler_params_check(const pio_sampler_params *p)
{
    if (isnan(p->temperature))
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "sampler: temperature is NaN");
    if (isnan(p->top_p) || p->top_p <= 0.0f)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                         "sampler: top_p %g must be > 0 (>= 1 turns it off)", (double)p->top_p);
    if (isnan(p->min_p) || p->min_p > 1.0f)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                         "sampler: min_p %g must be <= 1 (<= 0 turns it off)", (double)p->min_p);
    if (isnan(p->repetition_penalty) || p->repetition_penalty <= 0.0f)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                         "sampler: repetition_penalty %g must be > 0 (1 turns it off)",
                         (double)p->repetition_penalty);
    if (isnan(p->presence_penalty))
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "sampler: presence_penalty is NaN");
    if (isnan(p->frequency_penalty))
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "sampler: frequency_penalty is NaN");
    if (p->penalty_last_n < -1)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                         "sampler: penalty_last_n %d must be >= -1 (-1 = whole history)",
                         p->penalty_last_n);
    return PIO_STATUS_OK;
}

/* See sampler.h. `p` NULL means pio_sampler_params_default. */
pio_status pio_sampler_new(const pio_sampler_params *p, int n_vocab, int n_valid,
                           pio_sampler **out)
{
    pio_sampler_params defaults;
    pio_status st;
    pio_sampler *s;

    *out = NULL;
    if (!p) {
        pio_sampler_params_default(&defaults);
        p = &defaults;
    }
    if (n_vocab <= 0 || n_valid <= 0 || n_valid > n_vocab)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                         "sampler: n_valid %d must be in [1, n_vocab = %d]", n_valid, n_vocab);
    if ((st = sampler_params_check(p)) != PIO_STATUS_OK)
        return st;

    s = calloc(1, sizeof *s);
    if (!s)
        goto nomem;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->n_valid = n_valid;
    s->cand = malloc((size_t)n_valid * sizeof *s->cand);
    s->counts = calloc((size_t)n_vocab, sizeof *s->counts);
    if (!s->cand || !s->counts)
        goto free_sampler;
    pio_sampler_reseed(s, p->seed);
    *out = s;
    return PIO_STATUS_OK;

free_sampler:
    pio_sampler_free(s);
nomem:
    return pio_error(PIO_STATUS_ERR_NOMEM, "sampler: out of memory for a vocabulary of %d",
                     n_vocab);
}

void pio_sampler_free(pio_sampler *s)
{
    if (!s)
        return;
    free(s->cand);
    free(s->counts);
    free(s);
}

/* ---- logit processing ---------------------------------------------------- */

/*
 * Penalize each distinct token of the window history[n - last_n, n):
 * repetition (HF RepetitionPenaltyLogitsProcessor: once per token, divide
 * positive logits, multiply negative ones), then frequency * count and
 * presence (OpenAI / vLLM). counts[] is zero on entry and on return: it is
 * filled from the window, and each entry is cleared as its token is
 * penalized, which also makes each token penalized once. O(window).
 */
static void apply_penalties(pio_sampler *s, float *logits, const int32_t *history, int n_history)
{
    const pio_sampler_params *p = &s->p;
    int start;

    if (p->repetition_penalty == 1.0f && p->presence_penalty == 0.0f &&
        p->frequency_penalty == 0.0f)
        return;
    if (!history || n_history <= 0 || p->penalty_last_n == 0)
        return;
    start = (p->penalty_last_n < 0 || p->penalty_last_n >= n_history)
                ? 0 : n_history - p->penalty_last_n;

    for (int i = start; i < n_history; i++) {
        int32_t t = history[i];
        if (t >= 0 && t < s->n_vocab)
            s->counts[t]++;
    }
    for (int i = start; i < n_history; i++) {
        int32_t t = history[i];
        if (t < 0 || t >= s->n_vocab || s->counts[t] == 0)
            continue;
        float l = logits[t];
        if (p->repetition_penalty != 1.0f)
            l = l > 0.0f ? l / p->repetition_penalty : l * p->repetition_penalty;
        l -= p->frequency_penalty * (float)s->counts[t] + p->presence_penalty;
        logits[t] = l;
        s->counts[t] = 0;
    }
}

/* Does candidate a rank before b? Higher logit first, then lower id: a
 * total order, so selection is deterministic and ties go to the lower id. */
static inline bool cand_before(const sampler_cand *a, const sampler_cand *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cand_compare(const void *a, const void *b)
{
    const sampler_cand *x = a, *y = b;
    return cand_before(x, y) ? -1 : cand_before(y, x) ? 1 : 0;
}

static inline void cand_swap(sampler_cand *a, sampler_cand *b)
{
    sampler_cand t = *a;
    *a = *b;
    *b = t;
}

/* Rounds of partitioning before falling back to a sort: 2 log2(n) + 4. */
static int select_budget(int n)
{
    int budget = 4;
    for (int m = n; m > 1; m >>= 1)
        budget += 2;
    return budget;
}

/* Median of c[lo], c[mid], c[hi] in rank order, moved to c[hi]. */
static void pivot_to_end(sampler_cand *c, int lo, int hi)
{
    int mid = lo + (hi - lo) / 2;
    if (cand_before(&c[mid], &c[lo]))
        cand_swap(&c[mid], &c[lo]);
    if (cand_before(&c[hi], &c[lo]))
        cand_swap(&c[hi], &c[lo]);
    if (cand_before(&c[mid], &c[hi]))
        cand_swap(&c[mid], &c[hi]);
}

/* Lomuto partition of c[lo, hi] around the pivot at c[hi]: returns the
 * pivot's final index p, with c[lo, p) ranking before it. */
static int partition(sampler_cand *c, int lo, int hi)
{
    int store = lo;
    for (int i = lo; i < hi; i++)
        if (cand_before(&c[i], &c[hi]))
            cand_swap(&c[i], &c[store++]);
    cand_swap(&c[store], &c[hi]);
    return store;
}

/*
 * Rearrange c[0, n) so that c[0, k) holds the k best candidates (in no
 * particular order), 0 < k < n. Quickselect, O(n) expected; sorts the
 * remaining range if partitioning stops converging.
 */
static void cand_select_top(sampler_cand *c, int n, int k)
{
    int lo = 0, hi = n - 1, budget = select_budget(n);
    while (lo < hi) {
        if (budget-- == 0) {
            qsort(c + lo, (size_t)(hi - lo + 1), sizeof *c, cand_compare);
            return;
        }
        pivot_to_end(c, lo, hi);
        int p = partition(c, lo, hi);
        if (p == k || p == k - 1)
            return;
        if (p > k)
            hi = p - 1;
        else
            lo = p + 1;
    }
}

/* Restore the heap below `i`: a min-heap in rank order, so heap[0] is the
 * worst of the k kept. */
static void heap_sift_down(sampler_cand *h, int n, int i)
{
    for (;;) {
        int worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && cand_before(&h[worst], &h[l]))
            worst = l;
        if (r < n && cand_before(&h[worst], &h[r]))
            worst = r;
        if (worst == i)
            return;
        cand_swap(&h[i], &h[worst]);
        i = worst;
    }
}

/* The k best ids of logits[0, n) above -inf, into h[0, returned count).
 * One comparison per id once the heap is full; ids are scanned upwards,
 * so among equal logits the lower ids stay. */
static int heap_select_top(const float *logits, int n, int k, sampler_cand *h)
{
    int size = 0;
    for (int i = 0; i < n; i++) {
        float l = logits[i];
        if (!(l > -INFINITY))
            continue;
        if (size < k) {
            /* Sift up. */
            int j = size++;
            h[j] = (sampler_cand){ l, 0.0f, i };
            while (j > 0 && cand_before(&h[(j - 1) / 2], &h[j])) {
                cand_swap(&h[(j - 1) / 2], &h[j]);
                j = (j - 1) / 2;
            }
            if (size == k)
                continue;
        } else if (l > h[0].logit) {
            h[0] = (sampler_cand){ l, 0.0f, i };
            heap_sift_down(h, size, 0);
        }
    }
    return size;
}

/* exp(l - m) with the max itself exactly 1, also when m is +inf. */
static inline float cand_weight(float l, float m)
{
    return l == m ? 1.0f : expf(l - m);
}

/*
 * Top-p (HF TopPLogitsWarper): in rank order, keep each candidate whose
 * preceding mass is below `target` (top_p times the total weight); so the
 * smallest head reaching top_p, and at least one. Instead of sorting, a
 * quickselect that partitions around a pivot and compares the mass ranking
 * before it with what is still needed: O(n) expected. Returns the count
 * kept, gathered in c[0, count) in no particular order.
 */
static int cand_select_mass(sampler_cand *c, int n, double target)
{
    int lo = 0, hi = n - 1, budget = select_budget(n);
    /* Invariant: c[0, lo) kept; target = top_p * total - mass of c[0, lo);
     * c(hi, n) dropped; c[lo, hi] undecided. */
    while (lo <= hi && target > 0.0) {
        if (lo == hi || budget-- == 0) {
            /* Few left or no progress: sort and walk in rank order. */
            qsort(c + lo, (size_t)(hi - lo + 1), sizeof *c, cand_compare);
            while (lo <= hi && target > 0.0)
                target -= c[lo++].w;
            break;
        }
        pivot_to_end(c, lo, hi);
        int p = partition(c, lo, hi);
        double mass = 0.0;
        for (int i = lo; i < p; i++)
            mass += c[i].w;
        if (mass >= target) {
            hi = p - 1;              /* the pivot's preceding mass reaches top_p */
        } else {
            target -= mass + c[p].w; /* c[lo, p] kept */
            lo = p + 1;
        }
    }
    return lo > 0 ? lo : 1;
}

/*
 * Run the pipeline up to the draw. Fills s->cand[0, *n_cand) with the kept
 * candidates and their weights. Returns the greedy choice (>= 0) when
 * sampling is off, -2 when candidates are ready for a draw, -1 when no
 * valid logit is above -inf (message set).
 */
static int32_t sampler_prepare(pio_sampler *s, float *logits, const int32_t *history,
                               int n_history, int *n_cand)
{
    const pio_sampler_params *p = &s->p;
    sampler_cand *c = s->cand;
    int n = 0;
    float m = -INFINITY;
    int32_t best = -1;

    *n_cand = 0;
    for (int i = s->n_valid; i < s->n_vocab; i++)
        logits[i] = -INFINITY;
    apply_penalties(s, logits, history, n_history);

    /* Temperature (a division, as transformers does, in a branch-free loop
     * of its own), then NaN -> -inf and the maximum (lowest id on ties). */
    bool greedy = p->temperature < SAMPLER_MIN_TEMPERATURE;
    if (!greedy) {
        const float t = p->temperature;
        for (int i = 0; i < s->n_valid; i++)
            logits[i] /= t;
    }
    for (int i = 0; i < s->n_valid; i++) {
        float l = logits[i];
        if (isnan(l))
            logits[i] = l = -INFINITY;
        if (l > m) {
            m = l;
            best = i;
        }
    }
    if (best < 0) {
        pio_error(PIO_STATUS_ERR_INVALID_ARG,
                  "sampler: every logit of the %d valid ids is -inf or NaN", s->n_valid);
        return -1;
    }
    if (greedy) {
        *n_cand = 1;
        return best;
    }

    if (p->top_k > 0 && p->top_k <= SAMPLER_HEAP_MAX_K && p->top_k < s->n_valid) {
        n = heap_select_top(logits, s->n_valid, p->top_k, c);
    } else {
        for (int i = 0; i < s->n_valid; i++)
            if (logits[i] > -INFINITY)
                c[n++] = (sampler_cand){ logits[i], 0.0f, i };
        if (p->top_k > 0 && p->top_k < n) {
            cand_select_top(c, n, p->top_k);
            n = p->top_k;
        }
    }

    double total = 0.0;
    for (int i = 0; i < n; i++) {
        c[i].w = cand_weight(c[i].logit, m);
        total += c[i].w;
    }
    if (p->top_p < 1.0f)
        n = cand_select_mass(c, n, (double)p->top_p * total);
    if (p->min_p > 0.0f) {
        /* p_i >= min_p * p_max  <=>  w_i >= min_p, as the max has w = 1. */
        int kept = 0;
        for (int i = 0; i < n; i++)
            if (c[i].w >= p->min_p)
                c[kept++] = c[i];
        n = kept;
    }
    *n_cand = n;
    return -2;
}

/* See sampler.h. */
int32_t pio_sampler_sample(pio_sampler *s, float *logits, const int32_t *history, int n_history)
{
    int n;
    int32_t r = sampler_prepare(s, logits, history, n_history, &n);
    if (r != -2)
        return r;

    const sampler_cand *c = s->cand;
    double total = 0.0, acc = 0.0, u;
    for (int i = 0; i < n; i++)
        total += c[i].w;
    u = rng_uniform(s->rng) * total;
    for (int i = 0; i < n; i++) {
        acc += c[i].w;
        if (u < acc)
            return c[i].id;
    }
    /* Rounding left u at the very top: the last candidate with weight. */
    for (int i = n - 1; i > 0; i--)
        if (c[i].w > 0.0f)
            return c[i].id;
    return c[0].id;
}

/* See sampler.h. */
int pio_sampler_probs(pio_sampler *s, float *logits, const int32_t *history, int n_history,
                      float *probs)
{
    int n, nonzero = 0;
    int32_t r = sampler_prepare(s, logits, history, n_history, &n);

    memset(probs, 0, (size_t)s->n_vocab * sizeof *probs);
    if (r >= 0) {
        probs[r] = 1.0f;
        return 1;
    }
    if (r == -1)
        return 0;

    const sampler_cand *c = s->cand;
    double total = 0.0;
    for (int i = 0; i < n; i++)
        total += c[i].w;
    for (int i = 0; i < n; i++) {
        float pr = (float)(c[i].w / total);
        probs[c[i].id] = pr;
        nonzero += pr > 0.0f;
    }
    return nonzero;
}
