/*
 * sched.c - the inference thread: continuous batching over a paged KV cache
 * with sequence-level prefix caching and preemption.
 *
 * The thread owns the engine and every sequence. One step:
 *   1. take new requests from the incoming queue (each becomes n sequences,
 *      waiting in arrival order); drop sequences whose request was
 *      cancelled (client gone) or timed out;
 *   2. admit waiting sequences while there are free slots (a KV sequence
 *      id), fewer than max_seqs running and blocks for the prompt; the
 *      prompt's leading full blocks found in the prefix cache
 *      (prefix_cache.c: hash chain -> shared block) go straight into its
 *      block table and are not computed again;
 *   3. give every running sequence the KV blocks its next tokens need,
 *      evicting unused cached blocks (least recently used first) and, when
 *      that is not enough, preempting the most recently admitted running
 *      sequence (its blocks are released; it waits again at the front of
 *      the queue and recomputes prompt + generated tokens later, mostly
 *      from its own blocks, still in the prefix cache);
 *   4. build one batch: a decode token for each sequence that has its prompt
 *      in the cache, then prompt chunks, under batch_tokens; one
 *      pio_engine_forward; sample each sequence that got logits; push text
 *      events to its request.
 *   5. every block a step filled is entered in the prefix cache.
 * Block accounting: the pool's free list plus the cache's unused blocks,
 * minus what this step promised; so reserve never fails inside forward.
 */
#include "server/server_int.h"

#include "chat/tool_constraint.h"
#include "pio/kv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct srv_seq {
    srv_request *req;
    int choice;
    int slot;                  /* -1 while waiting */
    int32_t *tokens;           /* [n_ctx] prompt then generated */
    int n_tokens, n_prompt, n_gen;
    int n_kv;                  /* tokens [0, n_kv) have their K/V in the slot */
    int max_gen;
    pio_sampler *sampler;
    pio_detok *detok;
    pio_stop_matcher *stops;
    bool constrained;          /* tool_choice: tokens are masked to req->tool_grammar */
    pio_tool_state tstate;     /* where the generated text is in that grammar */
    double t_last;             /* last token (inter-token latency) */
    bool got_first;
    bool stop_hit;             /* a stop string ended it (nothing held back to flush) */
    uint64_t admitted;         /* admission order, for preemption */
    uint64_t *hashes;          /* [n_ctx / block] hash chain of the full blocks */
    int n_hashed;              /* blocks whose hash is known (and cached) */
    struct srv_seq *next;      /* waiting list */
} srv_seq;

typedef struct srv_slot {
    srv_seq *owner;            /* NULL: free (holds no blocks) */
    int n;                     /* positions whose blocks the slot's table holds */
} srv_slot;

typedef struct sched {
    pio_server *srv;
    pio_engine *e;
    pio_kv *kv;
    int n_ctx, n_vocab, n_slots, bs;
    int blocks_total;
    int pending_blocks;        /* blocks promised to this step's chunks, not yet reserved */
    srv_pcache pc;
    srv_slot *slots;           /* [n_slots] */
    srv_seq **running;         /* [max_seqs] in admission order */
    int n_running;
    srv_seq *wait_head, *wait_tail;
    int n_waiting;
    uint64_t admit_clock;
    /* batch buffers */
    int32_t *b_tok, *b_pos, *b_seq;
    uint8_t *b_want;
    srv_seq **b_owner;         /* [batch] sequence that wants the logits row, in order */
    float *logits;             /* [max_seqs][n_vocab] */
    float *lp_buf;             /* [n_vocab] */
    pio_tool_vocab *tvocab;    /* token bytes for tool_choice masks, built on first use */
    bool tvocab_failed;
} sched;

static int blocks_for(const sched *sc, int n) { return (n + sc->bs - 1) / sc->bs; }

/* Release the slot's blocks (full ones stay in the prefix cache). */
static void slot_clear(sched *sc, int slot)
{
    sc->kv->ops->truncate(sc->kv, slot, 0);
    sc->slots[slot].n = 0;
}

/* ---- events ------------------------------------------------------------- */

/* Append an event to the request and wake its HTTP thread (locks srv->mu). */
static void push_event(sched *sc, srv_seq *q, const char *text, size_t len, const srv_logprob *lp,
                       srv_finish finish)
{
    pio_server *s = sc->srv;
    srv_request *r = q->req;
    srv_event *ev = calloc(1, sizeof *ev);
    if (!ev)
        return;
    ev->choice = q->choice;
    if (len) {
        ev->text = malloc(len + 1);
        if (ev->text) {
            memcpy(ev->text, text, len);
            ev->text[len] = '\0';
            ev->len = len;
        }
    }
    if (lp) {
        ev->has_lp = true;
        ev->lp = *lp;
    }
    ev->finish = finish;
    pthread_mutex_lock(&s->mu);
    if (r->ev_tail)
        r->ev_tail->next = ev;
    else
        r->ev_head = ev;
    r->ev_tail = ev;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- sequence life cycle -------------------------------------------------- */

static void seq_free(srv_seq *q)
{
    if (!q)
        return;
    pio_sampler_free(q->sampler);
    pio_detok_free(q->detok);
    pio_stop_matcher_free(q->stops);
    free(q->tokens);
    free(q->hashes);
    free(q);
}

/* Choice `choice` of r as a waiting sequence (seed + choice, so n choices differ); NULL when out of memory. */
static srv_seq *seq_new(sched *sc, srv_request *r, int choice)
{
    pio_server *s = sc->srv;
    srv_seq *q = calloc(1, sizeof *q);
    pio_sampler_params sp = r->sp;
    if (!q)
        return NULL;
    q->req = r;
    q->choice = choice;
    q->slot = -1;
    q->tokens = malloc((size_t)sc->n_ctx * sizeof(int32_t));
    q->hashes = malloc(((size_t)sc->n_ctx / (size_t)sc->bs + 1) * sizeof(uint64_t));
    if (!q->tokens || !q->hashes)
        goto fail;
    memcpy(q->tokens, r->prompt, (size_t)r->n_prompt * sizeof(int32_t));
    q->n_tokens = q->n_prompt = r->n_prompt;
    q->max_gen = r->max_tokens;
    if (r->tool_grammar && s->tok) {
        q->constrained = true;
        pio_tool_state_init(r->tool_grammar, &q->tstate);
    }
    sp.seed += (uint64_t)choice;
    if (pio_sampler_new(&sp, sc->n_vocab, s->n_valid, &q->sampler) ||
        pio_stop_matcher_new_list((const char *const *)r->stops, &q->stops) ||
        (s->tok && pio_detok_new(s->tok, true, &q->detok)))
        goto fail;
    return q;
fail:
    seq_free(q);
    return NULL;
}

/* Hand the request back once all its choices ended (drops the inference ref). */
static void seq_finish(sched *sc, srv_seq *q, srv_finish why)
{
    pio_server *s = sc->srv;
    srv_request *r = q->req;
    bool last;

    /* release text still held for an incomplete character or a possible stop string */
    if ((why == SRV_FINISH_LENGTH || why == SRV_FINISH_TIMEOUT || why == SRV_FINISH_STOP) &&
        !q->stop_hit) {
        const char *text = "";
        size_t len = 0;
        pio_stop_result sr;
        if (q->detok && !pio_detok_flush(q->detok, &text, &len) && len &&
            !pio_stop_matcher_push(q->stops, text, len, &sr) && sr.len)
            push_event(sc, q, sr.text, sr.len, NULL, SRV_FINISH_NONE);
        if (!pio_stop_matcher_flush(q->stops, &sr) && sr.len)
            push_event(sc, q, sr.text, sr.len, NULL, SRV_FINISH_NONE);
    }
    push_event(sc, q, NULL, 0, NULL, why);

    pthread_mutex_lock(&s->metrics.mu);
    if (why == SRV_FINISH_TIMEOUT)
        s->metrics.requests_timed_out++;
    pthread_mutex_unlock(&s->metrics.mu);

    pthread_mutex_lock(&s->mu);
    r->usage_completion += q->n_gen;
    r->n_finished++;
    last = r->n_finished == r->n;
    if (last) {
        s->n_inflight--;
        srv_request_release_locked(r);
    }
    pthread_mutex_unlock(&s->mu);

    if (q->slot >= 0) {
        slot_clear(sc, q->slot);           /* its full blocks stay in the prefix cache */
        sc->slots[q->slot].owner = NULL;
    }
    seq_free(q);
}

/* Drop running[i], keeping admission order. */
static void running_remove(sched *sc, int i)
{
    memmove(sc->running + i, sc->running + i + 1, (size_t)(sc->n_running - i - 1) * sizeof *sc->running);
    sc->n_running--;
}

/* ---- queue intake ----------------------------------------------------------- */

static void waiting_push_back(sched *sc, srv_seq *q)
{
    q->next = NULL;
    if (sc->wait_tail)
        sc->wait_tail->next = q;
    else
        sc->wait_head = q;
    sc->wait_tail = q;
    sc->n_waiting++;
}

/* Queue first (a preempted sequence resumes before new ones). */
static void waiting_push_front(sched *sc, srv_seq *q)
{
    q->next = sc->wait_head;
    sc->wait_head = q;
    if (!sc->wait_tail)
        sc->wait_tail = q;
    sc->n_waiting++;
}

/* Turn requests from the incoming queue into waiting sequences. */
static void intake(sched *sc, srv_request *list)
{
    pio_server *s = sc->srv;
    while (list) {
        srv_request *r = list;
        int c;
        list = r->next;
        r->next = NULL;
        pthread_mutex_lock(&s->metrics.mu);
        s->metrics.prompt_tokens += (uint64_t)r->n_prompt;
        pthread_mutex_unlock(&s->metrics.mu);
        for (c = 0; c < r->n; c++) {
            srv_seq *q = seq_new(sc, r, c);
            if (!q) {
                /* out of memory: end this choice at once */
                srv_seq tmp = { .req = r, .choice = c, .slot = -1 };
                push_event(sc, &tmp, NULL, 0, NULL, SRV_FINISH_ERROR);
                pthread_mutex_lock(&s->mu);
                if (++r->n_finished == r->n) {
                    s->n_inflight--;
                    srv_request_release_locked(r);
                }
                pthread_mutex_unlock(&s->mu);
                continue;
            }
            waiting_push_back(sc, q);
        }
    }
}

/* Cancelled or timed out: how the sequence should end now, or NONE. */
static srv_finish seq_should_end(sched *sc, srv_seq *q, double now)
{
    bool cancelled;
    pthread_mutex_lock(&sc->srv->mu);
    cancelled = q->req->cancelled;
    pthread_mutex_unlock(&sc->srv->mu);
    if (cancelled || atomic_load(&sc->srv->stop))
        return SRV_FINISH_CANCELLED;
    if (now > q->req->deadline)
        return SRV_FINISH_TIMEOUT;
    return SRV_FINISH_NONE;
}

/* Count a cancellation in the metrics. */
static void count_cancel(sched *sc, srv_finish why)
{
    if (why != SRV_FINISH_CANCELLED)
        return;
    pthread_mutex_lock(&sc->srv->metrics.mu);
    sc->srv->metrics.requests_cancelled++;
    pthread_mutex_unlock(&sc->srv->metrics.mu);
}

/* End cancelled / timed-out sequences, running or waiting. */
static void reap(sched *sc)
{
    double now = srv_now();
    srv_seq **pp = &sc->wait_head, *prev = NULL;
    int i;
    for (i = 0; i < sc->n_running;) {
        srv_finish why = seq_should_end(sc, sc->running[i], now);
        if (why != SRV_FINISH_NONE) {
            srv_seq *q = sc->running[i];
            running_remove(sc, i);
            count_cancel(sc, why);
            seq_finish(sc, q, why);
            continue;
        }
        i++;
    }
    while (*pp) {
        srv_seq *q = *pp;
        srv_finish why = seq_should_end(sc, q, now);
        if (why != SRV_FINISH_NONE) {
            *pp = q->next;
            if (sc->wait_tail == q)
                sc->wait_tail = prev;
            sc->n_waiting--;
            count_cancel(sc, why);
            seq_finish(sc, q, why);
            continue;
        }
        prev = q;
        pp = &q->next;
    }
}

/* ---- admission and blocks ----------------------------------------------------- */

/* Free blocks now, after evicting unused cached blocks (LRU first) as needed
 * to reach `need`; may stay below it. */
static int make_free(sched *sc, int need)
{
    while (pio_kv_paged_n_free(sc->kv) - sc->pending_blocks < need && srv_pcache_evict_one(&sc->pc))
        ;
    return pio_kv_paged_n_free(sc->kv) - sc->pending_blocks;
}

/* Share the prompt's leading full blocks found in the prefix cache into q's
 * (empty) slot; returns the positions they cover. The last prompt token is
 * always computed (its logits start generation), so blocks end before it. */
static int attach_cached_prefix(sched *sc, srv_seq *q)
{
    int nb = (q->n_tokens - 1) / sc->bs, m = 0;
    int blocks[nb > 0 ? nb : 1];
    uint64_t parent = 0;
    if (sc->srv->cfg.no_prefix_cache)
        return 0;
    while (m < nb) {
        const int32_t *t = q->tokens + (size_t)m * (size_t)sc->bs;
        uint64_t h = srv_pcache_hash(parent, t);
        int blk = srv_pcache_lookup(&sc->pc, h, parent, t);
        if (blk < 0)
            break;
        blocks[m] = blk;
        q->hashes[m++] = h;
        parent = h;
    }
    q->n_hashed = 0;                   /* blocks past the hit are hashed again as they fill */
    if (m == 0 || pio_kv_paged_share(sc->kv, q->slot, blocks, m))
        return 0;
    q->n_hashed = m;
    sc->slots[q->slot].n = m * sc->bs;
    return m * sc->bs;
}

/* Enter the blocks q has filled since the last call in the prefix cache. */
static void register_blocks(sched *sc, srv_seq *q)
{
    int full = q->n_kv / sc->bs;
    if (sc->srv->cfg.no_prefix_cache)
        return;
    for (; q->n_hashed < full; q->n_hashed++) {
        int b = q->n_hashed;
        const int32_t *t = q->tokens + (size_t)b * (size_t)sc->bs;
        uint64_t parent = b > 0 ? q->hashes[b - 1] : 0;
        q->hashes[b] = srv_pcache_hash(parent, t);
        srv_pcache_insert(&sc->pc, q->hashes[b], parent, t, pio_kv_paged_block(sc->kv, q->slot, b));
    }
}

/* Admit waiting sequences while slots, the running limit and blocks allow:
 * a sequence needs blocks for its whole prompt (+1), counting what running
 * sequences still need for theirs. */
static void admit(sched *sc)
{
    pio_server *s = sc->srv;
    int i, owed = 0;
    for (i = 0; i < sc->n_running; i++) {
        srv_seq *r = sc->running[i];
        int left = blocks_for(sc, r->n_tokens + 1) - blocks_for(sc, sc->slots[r->slot].n);
        owed += left > 0 ? left : 0;
    }
    while (sc->wait_head && sc->n_running < s->cfg.max_seqs) {
        srv_seq *q = sc->wait_head;
        int slot = -1, reuse, need;
        for (i = 0; i < sc->n_slots && slot < 0; i++)
            if (!sc->slots[i].owner)
                slot = i;
        if (slot < 0)
            break;
        q->slot = slot;
        reuse = attach_cached_prefix(sc, q);     /* takes references: not evictable below */
        /* blocks for the rest of the prompt (+1 token) */
        need = blocks_for(sc, q->n_tokens + 1) - reuse / sc->bs;
        if (make_free(sc, need + owed) < need + owed && sc->n_running > 0) {
            slot_clear(sc, slot);
            q->slot = -1;
            break;                          /* wait for running sequences to finish */
        }
        sc->wait_head = q->next;
        if (!sc->wait_head)
            sc->wait_tail = NULL;
        sc->n_waiting--;
        q->next = NULL;
        q->n_kv = reuse;
        owed += need;
        q->admitted = ++sc->admit_clock;
        sc->slots[slot].owner = q;
        sc->running[sc->n_running++] = q;
        pthread_mutex_lock(&s->metrics.mu);
        s->metrics.prefix_query_tokens += (uint64_t)q->n_tokens;
        s->metrics.prefix_hit_tokens += (uint64_t)reuse;
        pthread_mutex_unlock(&s->metrics.mu);
        if (q->n_gen == 0) {
            pthread_mutex_lock(&s->mu);
            if (q->choice == 0)
                q->req->usage_cached = reuse;
            pthread_mutex_unlock(&s->mu);
        }
    }
}

/* Preempt running[i]: free its blocks, queue it first to recompute later. */
static void preempt(sched *sc, int i)
{
    srv_seq *q = sc->running[i];
    running_remove(sc, i);
    slot_clear(sc, q->slot);
    sc->slots[q->slot].owner = NULL;
    q->slot = -1;
    q->n_kv = 0;
    waiting_push_front(sc, q);
    pthread_mutex_lock(&sc->srv->metrics.mu);
    sc->srv->metrics.preemptions++;
    pthread_mutex_unlock(&sc->srv->metrics.mu);
}

/* ---- one step -------------------------------------------------------------- */

/* Log-probabilities of the raw logits row: the chosen token and the top k. */
static void fill_logprob(sched *sc, const float *row, int32_t tok, int k, srv_logprob *lp)
{
    int n = sc->srv->n_valid, i, j;
    float mx = -INFINITY;
    double sum = 0.0, lse;
    for (i = 0; i < n; i++)
        if (row[i] > mx)
            mx = row[i];
    for (i = 0; i < n; i++)
        sum += exp((double)(row[i] - mx));
    lse = (double)mx + log(sum);
    memset(lp, 0, sizeof *lp);
    lp->token = tok;
    lp->logprob = (float)((double)row[tok] - lse);
    if (k > SRV_MAX_TOP_LOGPROBS)
        k = SRV_MAX_TOP_LOGPROBS;
    for (i = 0; i < n && k > 0; i++) {    /* insertion into a sorted top-k list */
        float v = row[i];
        if (lp->n_top == k && v <= lp->top_lp[k - 1])
            continue;
        j = lp->n_top < k ? lp->n_top++ : k - 1;
        while (j > 0 && lp->top_lp[j - 1] < v) {
            lp->top_lp[j] = lp->top_lp[j - 1];
            lp->top_ids[j] = lp->top_ids[j - 1];
            j--;
        }
        lp->top_lp[j] = v;
        lp->top_ids[j] = i;
    }
    for (i = 0; i < lp->n_top; i++)
        lp->top_lp[i] = (float)((double)lp->top_lp[i] - lse);
}

/* One of the model's end-of-sequence ids? */
static bool is_eos(const pio_generation_config *g, int32_t tok)
{
    int i;
    for (i = 0; i < g->n_eos; i++)
        if (g->eos_token_ids[i] == tok)
            return true;
    return false;
}

/*
 * tool_choice "required" / named: mask the row to the tokens that continue
 * q's forced tool call (tool_constraint.h), closing it before max_tokens or
 * the context runs out when it can; only an end token once it is complete.
 * The token table is built once, on the first constrained request (~75 ms
 * for 152k tokens). Cost: about 0.2-1 ms per step with a 152k vocabulary.
 * When nothing can continue the call (never with a byte-level vocabulary)
 * only the end tokens stay: the reply ends there.
 */
static void seq_constrain(sched *sc, srv_seq *q, float *row)
{
    pio_server *s = sc->srv;
    const pio_generation_config *g = pio_engine_generation_config(sc->e);
    int budget = q->max_gen - q->n_gen, i;
    if (sc->n_ctx - q->n_tokens < budget)
        budget = sc->n_ctx - q->n_tokens;
    if (!sc->tvocab && !sc->tvocab_failed) {
        int32_t ends[PIO_MAX_EOS];
        for (i = 0; i < g->n_eos && i < PIO_MAX_EOS; i++)
            ends[i] = (int32_t)g->eos_token_ids[i];
        if (pio_tool_vocab_from_tokenizer(s->tok, sc->n_vocab, s->n_valid, ends, i, &sc->tvocab)) {
            fprintf(stderr, "pio serve: tool_choice is not enforced: %s\n", pio_last_error());
            sc->tvocab_failed = true;
        }
    }
    if (!sc->tvocab) {
        q->constrained = false;
        return;
    }
    if (pio_tool_mask(q->req->tool_grammar, &q->tstate, sc->tvocab, budget, row) > 0)
        return;
    for (i = 0; i < sc->n_vocab; i++)
        row[i] = is_eos(g, i) ? row[i] : -INFINITY;
}

/* Sample the next token of q from its logits row; returns how q ended (or NONE). */
static srv_finish seq_sample(sched *sc, srv_seq *q, float *row)
{
    pio_server *s = sc->srv;
    srv_request *r = q->req;
    const pio_generation_config *g = pio_engine_generation_config(sc->e);
    srv_logprob lp;
    const char *text = "";
    size_t len = 0;
    pio_stop_result sr = { "", 0, -1 };
    double now = srv_now();
    int32_t tok;
    bool forced_end = false;

    if (r->logprobs)
        memcpy(sc->lp_buf, row, (size_t)sc->n_vocab * sizeof(float));
    if (q->constrained)
        seq_constrain(sc, q, row);
    tok = pio_sampler_sample(q->sampler, row, q->tokens, q->n_tokens);
    if (tok < 0)
        return SRV_FINISH_ERROR;
    if (q->constrained) {
        /* an end token is allowed only when the call is complete: it ends even with ignore_eos */
        forced_end = is_eos(g, tok);
        if (!pio_tool_state_feed_token(r->tool_grammar, &q->tstate, sc->tvocab, tok))
            q->constrained = false;
    }
    if (r->logprobs)
        fill_logprob(sc, sc->lp_buf, tok, r->top_logprobs, &lp);
    q->n_gen++;
    pthread_mutex_lock(&s->metrics.mu);
    s->metrics.generated_tokens++;
    if (!q->got_first)
        srv_hist_add(&s->metrics.ttft, now - r->t_arrival);
    else
        srv_hist_add(&s->metrics.itl, now - q->t_last);
    pthread_mutex_unlock(&s->metrics.mu);
    q->got_first = true;
    q->t_last = now;

    if ((!r->ignore_eos || forced_end) && is_eos(g, tok)) {
        if (r->logprobs)
            push_event(sc, q, NULL, 0, &lp, SRV_FINISH_NONE);
        return SRV_FINISH_STOP;
    }
    q->tokens[q->n_tokens++] = tok;
    if (q->detok && pio_detok_push(q->detok, tok, &text, &len))
        return SRV_FINISH_ERROR;
    if (pio_stop_matcher_push(q->stops, text, len, &sr))
        return SRV_FINISH_ERROR;
    if (sr.len || r->logprobs)
        push_event(sc, q, sr.text, sr.len, r->logprobs ? &lp : NULL, SRV_FINISH_NONE);
    if (sr.stop_index >= 0) {
        q->stop_hit = true;
        return SRV_FINISH_STOP;
    }
    if (q->n_gen >= q->max_gen || q->n_tokens >= sc->n_ctx)
        return SRV_FINISH_LENGTH;
    return SRV_FINISH_NONE;
}

/* Give each running sequence the blocks its next chunk needs; preempt when short. */
static void reserve_blocks(sched *sc, int *chunk)
{
    int i = 0;
    sc->pending_blocks = 0;
    while (i < sc->n_running) {
        srv_seq *q = sc->running[i];
        int have = blocks_for(sc, sc->slots[q->slot].n);
        int need = blocks_for(sc, q->n_kv + chunk[i]) - have;
        if (need <= 0 || make_free(sc, need) >= need) {
            if (need > 0)
                sc->pending_blocks += need;
            i++;
            continue;
        }
        /* preempt the newest running sequence (possibly q itself) */
        {
            int j, newest = 0;
            for (j = 1; j < sc->n_running; j++)
                if (sc->running[j]->admitted > sc->running[newest]->admitted)
                    newest = j;
            memmove(chunk + newest, chunk + newest + 1, (size_t)(sc->n_running - newest - 1) * sizeof *chunk);
            preempt(sc, newest);
            if (newest < i)
                i--;
        }
    }
}

/* Publish running / waiting / KV block gauges. O(pool blocks). */
static void update_gauges(sched *sc)
{
    srv_metrics *m = &sc->srv->metrics;
    int cached = srv_pcache_n_idle(&sc->pc), all = sc->blocks_total - pio_kv_paged_n_free(sc->kv);
    pthread_mutex_lock(&m->mu);
    m->running = sc->n_running;
    m->waiting = sc->n_waiting;
    m->kv_blocks_total = sc->blocks_total;
    m->kv_blocks_used = all - cached;
    m->kv_blocks_cached = cached;
    pthread_mutex_unlock(&m->mu);
}

/* One forward step over all running sequences; false when there was nothing to do. */
static bool step(sched *sc)
{
    pio_server *s = sc->srv;
    int budget = s->cfg.batch_tokens, n = 0, n_rows = 0, i, t;
    int chunk[sc->n_running > 0 ? sc->n_running : 1];
    pio_batch b;
    pio_status st;

    if (sc->n_running == 0)
        return false;
    /* decode tokens first, then prompt chunks, in admission order */
    for (i = 0; i < sc->n_running; i++) {
        srv_seq *q = sc->running[i];
        chunk[i] = q->n_tokens - q->n_kv == 1 && budget > 0 ? 1 : 0;
        budget -= chunk[i];
    }
    for (i = 0; i < sc->n_running; i++) {
        srv_seq *q = sc->running[i];
        int left = q->n_tokens - q->n_kv;
        if (left > 1 && budget > 0) {
            chunk[i] = left < budget ? left : budget;
            budget -= chunk[i];
        }
    }
    reserve_blocks(sc, chunk);
    for (i = 0; i < sc->n_running; i++) {
        srv_seq *q = sc->running[i];
        for (t = 0; t < chunk[i]; t++) {
            int p = q->n_kv + t;
            sc->b_tok[n] = q->tokens[p];
            sc->b_pos[n] = p;
            sc->b_seq[n] = q->slot;
            sc->b_want[n] = p == q->n_tokens - 1;
            if (sc->b_want[n])
                sc->b_owner[n_rows++] = q;
            n++;
        }
    }
    if (n == 0)
        return sc->n_running > 0;
    b.n_tokens = n;
    b.tokens = sc->b_tok;
    b.pos = sc->b_pos;
    b.seq_id = sc->b_seq;
    b.want_logits = sc->b_want;
    st = pio_engine_forward(sc->e, &b, sc->logits);
    sc->pending_blocks = 0;
    pthread_mutex_lock(&s->metrics.mu);
    s->metrics.steps++;
    s->metrics.batch_tokens += (uint64_t)n;
    pthread_mutex_unlock(&s->metrics.mu);

    if (st) {
        /* the cache may hold partial rows: forget every sequence of this batch */
        fprintf(stderr, "pio serve: forward failed: %s\n", pio_last_error());
        while (sc->n_running > 0) {
            srv_seq *q = sc->running[0];
            running_remove(sc, 0);
            seq_finish(sc, q, SRV_FINISH_ERROR);     /* clears its slot */
        }
        return true;
    }
    /* the cache now holds the chunk's rows */
    for (i = 0; i < sc->n_running; i++) {
        srv_seq *q = sc->running[i];
        q->n_kv += chunk[i];
        sc->slots[q->slot].n = q->n_kv;
        register_blocks(sc, q);
    }
    for (i = 0; i < n_rows; i++) {
        srv_seq *q = sc->b_owner[i];
        srv_finish why = seq_sample(sc, q, sc->logits + (size_t)i * (size_t)sc->n_vocab);
        if (why != SRV_FINISH_NONE) {
            int j;
            for (j = 0; j < sc->n_running && sc->running[j] != q; j++)
                ;
            running_remove(sc, j);
            seq_finish(sc, q, why);
        }
    }
    return true;
}

/* ---- the thread ---------------------------------------------------------------- */

static pio_status sched_init(sched *sc, pio_server *s)
{
    pio_status st;
    int max_seqs = s->cfg.max_seqs, bt = s->cfg.batch_tokens;
    memset(sc, 0, sizeof *sc);
    sc->srv = s;
    sc->e = s->engine;
    sc->kv = pio_engine_kv(s->engine);
    sc->n_ctx = s->n_ctx;
    sc->n_vocab = s->n_vocab;
    sc->n_slots = sc->kv->n_seqs;
    sc->bs = PIO_ENGINE_KV_BLOCK;
    sc->blocks_total = pio_kv_paged_n_blocks(sc->kv);
    if ((st = srv_pcache_init(&sc->pc, sc->kv)))
        return st;
    if (bt < max_seqs)
        bt = max_seqs;
    sc->slots = calloc((size_t)sc->n_slots, sizeof *sc->slots);
    sc->running = calloc((size_t)max_seqs, sizeof *sc->running);
    sc->b_tok = malloc((size_t)bt * sizeof(int32_t));
    sc->b_pos = malloc((size_t)bt * sizeof(int32_t));
    sc->b_seq = malloc((size_t)bt * sizeof(int32_t));
    sc->b_want = malloc((size_t)bt);
    sc->b_owner = malloc((size_t)bt * sizeof *sc->b_owner);
    sc->logits = malloc((size_t)max_seqs * (size_t)sc->n_vocab * sizeof(float));
    sc->lp_buf = malloc((size_t)sc->n_vocab * sizeof(float));
    if (!sc->slots || !sc->running || !sc->b_tok || !sc->b_pos || !sc->b_seq || !sc->b_want ||
        !sc->b_owner || !sc->logits || !sc->lp_buf)
        return pio_error(PIO_STATUS_ERR_NOMEM, "serve: out of memory for the scheduler");
    return PIO_STATUS_OK;
}

/* Release the prefix cache's blocks and the scheduler's buffers. */
static void sched_free(sched *sc)
{
    srv_pcache_free(&sc->pc);
    free(sc->slots);
    free(sc->running);
    free(sc->b_tok);
    free(sc->b_pos);
    free(sc->b_seq);
    free(sc->b_want);
    free(sc->b_owner);
    free(sc->logits);
    free(sc->lp_buf);
    pio_tool_vocab_free(sc->tvocab);
}

bool srv_submit(pio_server *s, srv_request *r)
{
    bool ok;
    pthread_mutex_lock(&s->mu);
    ok = s->n_waiting_requests < s->cfg.max_queue && !atomic_load(&s->shutting_down);
    if (ok) {
        r->refs++;
        r->next = NULL;
        if (s->in_tail)
            s->in_tail->next = r;
        else
            s->in_head = r;
        s->in_tail = r;
        s->n_waiting_requests++;
        s->n_inflight++;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

/* Requests (not sequences) still waiting: the incoming queue and those whose
 * choice 0 has not been admitted. Used for the 429 bound. */
static int count_waiting_requests(sched *sc)
{
    int n = 0;
    srv_seq *q;
    for (q = sc->wait_head; q; q = q->next)
        if (q->choice == 0 && q->n_gen == 0)
            n++;
    return n;
}

/* The inference thread: wait for work, then intake -> reap -> admit -> step, until stopped. */
void *srv_infer_main(void *arg)
{
    pio_server *s = arg;
    sched sc;
    pio_status st = sched_init(&sc, s);

    if (st) {
        fprintf(stderr, "pio serve: %s\n", pio_last_error());
        atomic_store(&s->load_failed, true);
        sched_free(&sc);
        return NULL;
    }
    for (;;) {
        srv_request *list;
        int n_incoming = 0;
        srv_request *r;

        pthread_mutex_lock(&s->mu);
        while (!s->in_head && sc.n_running == 0 && sc.n_waiting == 0 && !atomic_load(&s->stop)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        list = s->in_head;
        s->in_head = s->in_tail = NULL;
        for (r = list; r; r = r->next)
            n_incoming++;
        pthread_mutex_unlock(&s->mu);

        if (atomic_load(&s->stop) && !list && sc.n_running == 0 && sc.n_waiting == 0)
            break;
        if (list) {
            pthread_mutex_lock(&s->metrics.mu);
            s->metrics.requests_total += (uint64_t)n_incoming;
            pthread_mutex_unlock(&s->metrics.mu);
        }
        intake(&sc, list);
        reap(&sc);
        admit(&sc);
        pthread_mutex_lock(&s->mu);
        s->n_waiting_requests = count_waiting_requests(&sc);
        for (r = s->in_head; r; r = r->next)
            s->n_waiting_requests++;
        pthread_mutex_unlock(&s->mu);
        update_gauges(&sc);
        step(&sc);
        update_gauges(&sc);
    }
    sched_free(&sc);
    return NULL;
}
