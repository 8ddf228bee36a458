/*
 * engine.c - model loading (files -> plugin -> KV cache) and generation.
 */
#include "pio/engine.h"
#include "pio/chat_template.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PIO_PREFILL_CHUNK 512   /* tokens per forward step during prefill */
#define PIO_DEFAULT_CTX 4096

struct pio_engine {
    char *dir;
    pio_hf_config config;
    pio_generation_config gen;
    pio_weights *weights;
    pio_tokenizer *tok;
    const pio_model_plugin *plugin;
    pio_plugin_ctx *ctx;
    pio_model_info info;
    pio_kv *kv;
    int n_ctx;
    int32_t **history;          /* [n_seqs] tokens whose K/V are in the cache */
    int *n_history;             /* [n_seqs] */
    pio_chat_template *chat_tpl;  /* the model directory's own template, or NULL */
    char *chat_tpl_error;       /* why it did not parse (reported by format_chat), or NULL */
};

void pio_engine_params_default(pio_engine_params *p)
{
    memset(p, 0, sizeof *p);
    p->opts.n_threads = 0;
    p->opts.n_ctx = 0;
    p->opts.n_seqs = 0;      /* the plugin's default (plugin_config.json), else 1 */
    p->progress = true;
    p->kv_dtype = PIO_DTYPE_F16;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/*
 * On a terminal, read one byte per page of every weight (experts aside
 * unless `experts`) with a progress bar, so a large model's load time shows
 * at load and not as a slow first token; with `experts` (--preload) read
 * them on any output. Cost: one pass over the weight pages.
 */
static void weights_page_in(const pio_weights *w, bool show, bool experts)
{
    int64_t total = 0, done = 0;
    int i, last_pct = -1;
    volatile unsigned char sink = 0;
    long page = sysconf(_SC_PAGESIZE);

    for (i = 0; i < pio_weights_count(w); i++)
        if (experts || !pio_tensor_is_expert(pio_weights_at(w, i)))
            total += (int64_t)pio_weights_at(w, i)->nbytes;
    show = show && total >= (64 << 20) && isatty(STDERR_FILENO);
    if (!show && !experts)
        return;
    for (i = 0; i < pio_weights_count(w); i++) {
        const pio_tensor *t = pio_weights_at(w, i);
        const unsigned char *p = t->data;
        size_t off;
        int pct;
        if (!experts && pio_tensor_is_expert(t))
            continue;
        for (off = 0; off < t->nbytes; off += (size_t)page)
            sink ^= p[off];
        done += (int64_t)t->nbytes;
        if (!show)
            continue;
        pct = (int)(done * 100 / total);
        if (pct != last_pct) {
            int bar = pct / 4, j;
            fprintf(stderr, "\rloading [");
            for (j = 0; j < 25; j++)
                fputc(j < bar ? '#' : ' ', stderr);
            fprintf(stderr, "] %3d%% %.1f/%.1f GB", pct, (double)done / 1e9, (double)total / 1e9);
            last_pct = pct;
        }
    }
    (void)sink;
    if (show)
        fprintf(stderr, "\n");
}

/*
 * The selected plugin's default configuration: <plugin>.json beside its
 * shared object (src/models/<family>/plugin_config.json, copied there by the
 * build). Fills the options the caller left at 0, and the cap on the
 * context used when none is asked for ("n_ctx_max"); a missing file is fine.
 */
static void plugin_defaults(const pio_model_plugin *plugin, pio_options *opts, int *n_ctx_max)
{
    const char *origin = NULL;
    char path[4096], *dot;
    FILE *f;
    int i;

    for (i = 0; i < pio_plugins_count(); i++)
        if (pio_plugins_at(i, &origin) == plugin)
            break;
    if (i == pio_plugins_count() || !origin)
        return;
    snprintf(path, sizeof path, "%s", origin);
    dot = strrchr(path, '.');
    if (!dot || strcmp(dot, ".so") != 0)
        return;
    strcpy(dot, ".json");
    f = fopen(path, "rb");
    if (f) {
        char buf[8192];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        cJSON *root, *defs;
        fclose(f);
        buf[n] = '\0';
        root = cJSON_Parse(buf);
        defs = cJSON_GetObjectItemCaseSensitive(root, "defaults");
        if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(defs, "n_ctx_max")))
            *n_ctx_max = cJSON_GetObjectItemCaseSensitive(defs, "n_ctx_max")->valueint;
        if (opts->n_seqs <= 0 && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(defs, "n_seqs")))
            opts->n_seqs = cJSON_GetObjectItemCaseSensitive(defs, "n_seqs")->valueint;
        cJSON_Delete(root);
    }
}

/*
 * A GGUF model file (-m model.gguf): config, generation settings, tokenizer
 * and weights all come from its metadata and tensors (formats.h, GGUF).
 */
/*
 * A GGUF model's chat template (tokenizer.chat_template) with its bos/eos
 * token texts; a template that does not parse is kept as an error for
 * pio_engine_format_chat (see engine_load_chat_template).
 */
static pio_status engine_gguf_chat_template(pio_engine *e, const pio_gguf *g)
{
    static const char *const tokens[][2] = {
        { "tokenizer.ggml.bos_token_id", "bos_token" }, { "tokenizer.ggml.eos_token_id", "eos_token" },
    };
    const char *src, *text;
    size_t len;
    int64_t id;
    pio_status st = pio_gguf_get_str(g, "tokenizer.chat_template", &src, &len);
    if (st == PIO_STATUS_ERR_MISSING) {
        pio_clear_error();
        return PIO_STATUS_OK;
    }
    if (st)
        return st;
    st = pio_chat_template_parse(src, len, "tokenizer.chat_template", &e->chat_tpl);
    if (st == PIO_STATUS_ERR_NOMEM)
        return st;
    if (st) {
        e->chat_tpl_error = strdup(pio_last_error());
        return e->chat_tpl_error ? PIO_STATUS_OK : pio_error(PIO_STATUS_ERR_NOMEM, "engine: out of memory");
    }
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++) {
        if (!e->tok || pio_gguf_get_int(g, tokens[i][0], &id) || id < 0 || id > INT32_MAX)
            continue;
        text = pio_tokenizer_id_to_token(e->tok, (int32_t)id);
        if (text && (st = pio_chat_template_set_default(e->chat_tpl, tokens[i][1], text)))
            return st;
    }
    pio_clear_error();
    return PIO_STATUS_OK;
}

static pio_status engine_load_gguf(pio_engine *e, const char *path)
{
    pio_gguf *g;
    pio_status st = pio_gguf_open(path, &g);
    if (st)
        return st;
    st = pio_hf_config_from_gguf(g, &e->config);
    if (!st)
        st = pio_generation_config_from_gguf(g, &e->gen);
    if (!st && e->gen.n_eos == 0) {
        e->gen.n_eos = e->config.n_eos;
        memcpy(e->gen.eos_token_ids, e->config.eos_token_ids, sizeof e->gen.eos_token_ids);
    }
    if (!st && pio_gguf_find_key(g, "tokenizer.ggml.model") >= 0) {
        st = pio_tokenizer_from_gguf(g, &e->tok);
        if (st == PIO_STATUS_ERR_UNSUPPORTED) {   /* a vocabulary we cannot run (another pre-tokenizer, */
            st = PIO_STATUS_OK;                    /* a placeholder): no tokenizer, as a directory without */
            pio_clear_error();                     /* tokenizer.json; ids still work (logits, bench) */
        }
    }
    if (!st)
        st = engine_gguf_chat_template(e, g);
    if (st) {
        pio_gguf_free(g);
        return st;
    }
    return pio_weights_from_gguf(g, &e->weights);   /* the weights own g from here */
}

/* -m names a file: a GGUF model (by its ".gguf" name or its magic), or an error. */
static pio_status engine_model_file(const char *path, bool *is_gguf)
{
    struct stat sb;
    size_t n = strlen(path);
    *is_gguf = false;
    if (stat(path, &sb) != 0 || S_ISDIR(sb.st_mode))
        return PIO_STATUS_OK;                  /* a directory (or missing: reported below) */
    if (S_ISREG(sb.st_mode) && (pio_file_is_gguf(path) || (n > 5 && strcmp(path + n - 5, ".gguf") == 0))) {
        *is_gguf = true;
        return PIO_STATUS_OK;
    }
    return pio_error(PIO_STATUS_ERR_IO, "%s: not a model directory or a GGUF file (.gguf)", path);
}

/*
 * The model directory's chat template (pio/chat_template.h). None is fine
 * (the plugin's format_chat is used); one that does not parse is kept as an
 * error for pio_engine_format_chat, so `pio run` with a raw prompt still works
 * while a chat never silently falls back to another format.
 */
static pio_status engine_load_chat_template(pio_engine *e, const char *model_dir)
{
    pio_status st = pio_chat_template_load(model_dir, &e->chat_tpl);
    if (st == PIO_STATUS_OK || st == PIO_STATUS_ERR_MISSING)
        return PIO_STATUS_OK;
    if (st == PIO_STATUS_ERR_NOMEM)
        return st;
    e->chat_tpl_error = strdup(pio_last_error());
    return e->chat_tpl_error ? PIO_STATUS_OK : pio_error(PIO_STATUS_ERR_NOMEM, "engine: out of memory");
}

pio_status pio_engine_load(const char *model_dir, const pio_engine_params *params, pio_engine **out)
{
    bool is_gguf;
    pio_engine_params defaults;
    pio_options opts;
    int n_ctx_max = PIO_DEFAULT_CTX;
    pio_engine *e;
    pio_model_files files;
    char path[4096];
    pio_status st;
    int n_ctx, i;

    if (!params) {
        pio_engine_params_default(&defaults);
        params = &defaults;
    }
    e = calloc(1, sizeof *e);
    if (!e)
        return pio_error(PIO_STATUS_ERR_NOMEM, "engine: out of memory");
    e->dir = strdup(model_dir);
    if (!e->dir) {
        st = pio_error(PIO_STATUS_ERR_NOMEM, "engine: out of memory");
        goto fail;
    }

    if ((st = engine_model_file(model_dir, &is_gguf)))
        goto fail;
    if (is_gguf) {
        if ((st = engine_load_gguf(e, model_dir)))
            goto fail;
        goto select_plugin;
    }

    snprintf(path, sizeof path, "%s/config.json", model_dir);
    if (!file_exists(path)) {
        st = pio_error(PIO_STATUS_ERR_IO, "%s: no such file (is %s a model directory?)", path, model_dir);
        goto fail;
    }
    st = pio_hf_config_load(path, &e->config);
    if (st)
        goto fail;

    pio_generation_config_defaults(&e->gen);
    snprintf(path, sizeof path, "%s/generation_config.json", model_dir);
    if (file_exists(path) && (st = pio_generation_config_load(path, &e->gen)))
        goto fail;
    if (e->gen.n_eos == 0) {                 /* fall back to config.json's eos */
        e->gen.n_eos = e->config.n_eos;
        memcpy(e->gen.eos_token_ids, e->config.eos_token_ids, sizeof e->gen.eos_token_ids);
    }

    snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
    if (file_exists(path) && (st = pio_tokenizer_load(path, &e->tok)))
        goto fail;

select_plugin:
    if (!is_gguf && (st = engine_load_chat_template(e, model_dir)))
        goto fail;
    st = pio_plugins_load_default();
    if (st)
        goto fail;
    if (params->plugin_dir && (st = pio_plugins_load_directory(params->plugin_dir, NULL)))
        goto fail;
    st = pio_plugins_select(&e->config, &e->plugin);
    if (st)
        goto fail;
    opts = params->opts;
    plugin_defaults(e->plugin, &opts, &n_ctx_max);
    if (opts.n_seqs <= 0)
        opts.n_seqs = 1;

    if (!e->weights)                         /* a GGUF file's are open already */
        st = pio_weights_open_dir(model_dir, &e->weights);
    if (st)
        goto fail;
    /* quantize on load (--dtype): before the page-in, so only the converted
     * copies and the tensors left as stored are read in */
    if (opts.dtype && opts.dtype[0] &&
        (st = pio_weights_requantize(e->weights, opts.dtype, opts.n_threads, NULL)))
        goto fail;
    /* the layout the active CPU kernels run fastest (Q8_0/Q4_0/Q4_K/Q6_K -> X8 at AVX2) */
    if ((st = pio_weights_repack(e->weights, opts.n_threads, params->preload ? PIO_REPACK_EXPERTS : 0,
                                 NULL)))
        goto fail;
    /* dense matrices still in the file mapping: 2 MiB pages where the page cache has them */
    pio_weights_advise_hugepages(e->weights);
    weights_page_in(e->weights, params->progress, params->preload);

    st = e->plugin->initialize(&e->ctx, &opts);
    if (st)
        goto fail;
    files.dir = model_dir;
    files.config = &e->config;
    files.weights = e->weights;
    files.generation = &e->gen;
    st = e->plugin->load_model(e->ctx, &files);
    if (st)
        goto fail;
    st = e->plugin->get_model_info(e->ctx, &e->info);
    if (st)
        goto fail;

    n_ctx = opts.n_ctx;
    if (n_ctx <= 0) {                 /* the trained context, capped to keep the cache small */
        n_ctx = (int)e->info.n_ctx_train;
        if (n_ctx <= 0 || n_ctx > n_ctx_max)
            n_ctx = n_ctx_max;
    }
    e->n_ctx = n_ctx;
    {
        int n_seqs = opts.n_seqs;
        st = pio_kv_paged_new(e->info.kv_layers, n_seqs, n_ctx, e->info.kv_k_dim,
                              e->info.kv_v_dim, params->kv_dtype, PIO_ENGINE_KV_BLOCK, params->kv_blocks,
                              &e->kv);
        if (st)
            goto fail;
        e->history = calloc((size_t)n_seqs, sizeof *e->history);
        e->n_history = calloc((size_t)n_seqs, sizeof *e->n_history);
        if (!e->history || !e->n_history) {
            st = pio_error(PIO_STATUS_ERR_NOMEM, "engine: out of memory");
            goto fail;
        }
        for (i = 0; i < n_seqs; i++) {
            e->history[i] = malloc((size_t)n_ctx * sizeof(int32_t));
            if (!e->history[i]) {
                st = pio_error(PIO_STATUS_ERR_NOMEM, "engine: out of memory");
                goto fail;
            }
        }
    }
    *out = e;
    return PIO_STATUS_OK;

fail:
    pio_engine_free(e);
    return st;
}

void pio_engine_free(pio_engine *e)
{
    int i;
    if (!e)
        return;
    if (e->history)
        for (i = 0; i < (e->kv ? e->kv->n_seqs : 0); i++)
            free(e->history[i]);
    free(e->history);
    free(e->n_history);
    pio_kv_free(e->kv);
    if (e->ctx)
        e->plugin->cleanup(e->ctx);
    pio_weights_free(e->weights);
    pio_tokenizer_free(e->tok);
    pio_hf_config_free(&e->config);
    pio_chat_template_free(e->chat_tpl);
    free(e->chat_tpl_error);
    free(e->dir);
    free(e);
}

const pio_model_info *pio_engine_model_info(const pio_engine *e) { return &e->info; }
const pio_hf_config *pio_engine_config(const pio_engine *e) { return &e->config; }
const pio_generation_config *pio_engine_generation_config(const pio_engine *e) { return &e->gen; }
const pio_model_plugin *pio_engine_plugin(const pio_engine *e) { return e->plugin; }
const pio_tokenizer *pio_engine_tokenizer(const pio_engine *e) { return e->tok; }
int pio_engine_n_ctx(const pio_engine *e) { return e->n_ctx; }
pio_kv *pio_engine_kv(pio_engine *e) { return e->kv; }

pio_status pio_engine_forward(pio_engine *e, const pio_batch *batch, float *logits)
{
    return e->plugin->infer(e->ctx, batch, e->kv, logits);
}

void pio_engine_seq_reset(pio_engine *e, int seq)
{
    if (seq < 0 || seq >= e->kv->n_seqs)
        return;
    e->kv->ops->truncate(e->kv, seq, 0);
    e->n_history[seq] = 0;
}

/*
 * Run tokens[from, n) of `seq` through the model in chunks, positions from
 * `from`; logits of the last token go to `last_logits` (may be NULL), and
 * with `all_logits` every position's logits are stored at all_logits[pos].
 */
static pio_status prefill(pio_engine *e, int seq, const int32_t *tokens, int from, int n,
                          float *last_logits, float *all_logits)
{
    int32_t *pos = NULL, *seqs = NULL;
    uint8_t *want = NULL;
    float *out = NULL;
    int64_t V = e->info.n_vocab;
    pio_status st = PIO_STATUS_OK;
    int start, i;

    pos = malloc(PIO_PREFILL_CHUNK * sizeof *pos);
    seqs = malloc(PIO_PREFILL_CHUNK * sizeof *seqs);
    want = malloc(PIO_PREFILL_CHUNK);
    if (!all_logits)
        out = malloc((size_t)V * sizeof(float));
    if (!pos || !seqs || !want || (!all_logits && !out)) {
        st = pio_error(PIO_STATUS_ERR_NOMEM, "engine: out of memory");
        goto done;
    }
    for (start = from; start < n; start += PIO_PREFILL_CHUNK) {
        int cnt = n - start < PIO_PREFILL_CHUNK ? n - start : PIO_PREFILL_CHUNK;
        pio_batch b = { cnt, tokens + start, pos, seqs, want };
        for (i = 0; i < cnt; i++) {
            pos[i] = start + i;
            seqs[i] = seq;
            want[i] = all_logits ? 1 : (start + i == n - 1);
        }
        st = e->plugin->infer(e->ctx, &b, e->kv, all_logits ? all_logits + (size_t)start * V : out);
        if (st)
            goto done;
        memcpy(e->history[seq] + start, tokens + start, (size_t)cnt * sizeof(int32_t));
        e->n_history[seq] = start + cnt;
    }
    if (last_logits && out)
        memcpy(last_logits, out, (size_t)V * sizeof(float));
done:
    free(pos);
    free(seqs);
    free(want);
    free(out);
    return st;
}

pio_status pio_engine_logits(pio_engine *e, const int32_t *ids, int n, float **logits)
{
    pio_status st;
    if (n <= 0)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "logits: no token ids given");
    if (n > e->n_ctx)
        return pio_error(PIO_STATUS_ERR_LIMIT, "logits: %d tokens but the context is %d", n, e->n_ctx);
    *logits = malloc((size_t)n * (size_t)e->info.n_vocab * sizeof(float));
    if (!*logits)
        return pio_error(PIO_STATUS_ERR_NOMEM, "logits: out of memory");
    pio_engine_seq_reset(e, 0);
    st = prefill(e, 0, ids, 0, n, NULL, *logits);
    if (st) {
        free(*logits);
        *logits = NULL;
    }
    return st;
}

/*
 * The model's own template renders the whole context; without one the
 * plugin's "format_chat" command gets the same JSON (it reads "messages"
 * and "add_generation_prompt").
 */
pio_status pio_engine_format_chat(pio_engine *e, const char *context_json, char **prompt)
{
    cJSON *res = NULL;
    char *out = NULL;
    pio_status st;

    *prompt = NULL;
    if (e->chat_tpl_error)
        return pio_error(PIO_STATUS_ERR_FORMAT, "chat template: %s", e->chat_tpl_error);
    if (e->chat_tpl) {
        /* as transformers' apply_chat_template: `tools` is always defined
         * (None when the caller has none), which templates test with
         * "tools is not none" */
        cJSON *ctx = cJSON_Parse(context_json);
        char *with_tools;
        if (!ctx || !cJSON_IsObject(ctx) || cJSON_HasObjectItem(ctx, "tools")) {
            cJSON_Delete(ctx);
            return pio_chat_template_render(e->chat_tpl, context_json, prompt);
        }
        with_tools = cJSON_AddNullToObject(ctx, "tools") ? cJSON_PrintUnformatted(ctx) : NULL;
        cJSON_Delete(ctx);
        if (!with_tools)
            return pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
        st = pio_chat_template_render(e->chat_tpl, with_tools, prompt);
        free(with_tools);
        return st;
    }
    if (!e->plugin->execute)
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s has no chat template and plugin %s has no chat format",
                         e->dir, e->plugin->name);
    st = e->plugin->execute(e->ctx, "format_chat", context_json, &out);
    if (st)
        return st;
    res = cJSON_Parse(out);
    free(out);
    if (!res || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(res, "prompt"))) {
        cJSON_Delete(res);
        return pio_error(PIO_STATUS_ERR_FORMAT, "plugin %s: format_chat returned no prompt",
                         e->plugin->name);
    }
    *prompt = strdup(cJSON_GetObjectItemCaseSensitive(res, "prompt")->valuestring);
    cJSON_Delete(res);
    return *prompt ? PIO_STATUS_OK : pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
}

void pio_engine_gen_params_default(const pio_engine *e, pio_gen_params *p)
{
    const pio_generation_config *g = &e->gen;
    memset(p, 0, sizeof *p);
    pio_sampler_params_default(&p->sampling);
    if (g->do_sample) {
        p->sampling.temperature = (float)g->temperature;
        p->sampling.top_k = (int)g->top_k;
        p->sampling.top_p = (float)g->top_p;
        p->sampling.min_p = (float)g->min_p;
    }
    p->sampling.repetition_penalty = (float)g->repetition_penalty;
    p->max_tokens = g->max_new_tokens > 0 ? (int)g->max_new_tokens : -1;
}

static bool is_eos(const pio_engine *e, int32_t tok)
{
    int i;
    for (i = 0; i < e->gen.n_eos; i++)
        if (e->gen.eos_token_ids[i] == tok)
            return true;
    return false;
}

/* Feed one token of `seq` at the next position; logits of it into `logits`. */
static pio_status decode_step(pio_engine *e, int seq, int32_t token, float *logits)
{
    int32_t pos = e->n_history[seq];
    uint8_t want = 1;
    pio_batch b = { 1, &token, &pos, &seq, &want };
    pio_status st = e->plugin->infer(e->ctx, &b, e->kv, logits);
    if (st)
        return st;
    e->history[seq][pos] = token;
    e->n_history[seq] = pos + 1;
    return PIO_STATUS_OK;
}

/* Pass text through the stop matcher to the callback; true to go on. */
static bool emit(pio_stop_matcher *stops, int32_t token, const char *text, size_t len,
                 pio_gen_callback cb, void *user, bool *hit)
{
    pio_stop_result sr;
    if (pio_stop_matcher_push(stops, text, len, &sr))
        return false;
    *hit = sr.stop_index >= 0;
    return cb ? cb(user, token, sr.text, sr.len) : true;
}

pio_status pio_engine_generate(pio_engine *e, int seq, const int32_t *tokens, int n_tokens,
                               const pio_gen_params *params, pio_gen_callback cb, void *user,
                               pio_gen_result *res)
{
    int64_t V = e->info.n_vocab;
    int n_valid = (int)V, prefix = 0;
    float *logits = NULL;
    pio_sampler *sampler = NULL;
    pio_detok *detok = NULL;
    pio_stop_matcher *stops = NULL;
    pio_stop_result sr;
    pio_status st;
    double t0;
    bool hit = false;

    memset(res, 0, sizeof *res);
    if (seq < 0 || seq >= e->kv->n_seqs)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "generate: sequence %d out of range [0, %d)",
                         seq, e->kv->n_seqs);
    if (n_tokens <= 0)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "generate: the prompt is empty");
    if (n_tokens > e->n_ctx)
        return pio_error(PIO_STATUS_ERR_LIMIT, "generate: the prompt has %d tokens but the context is %d "
                         "(use a larger --ctx or a shorter prompt)", n_tokens, e->n_ctx);
    if (e->tok && pio_tokenizer_n_vocab(e->tok) < n_valid)
        n_valid = pio_tokenizer_n_vocab(e->tok);

    /* reuse the cached prefix; at least the last prompt token is recomputed for its logits */
    while (prefix < e->n_history[seq] && prefix < n_tokens - 1 && e->history[seq][prefix] == tokens[prefix])
        prefix++;
    e->kv->ops->truncate(e->kv, seq, prefix);
    e->n_history[seq] = prefix;
    res->n_prompt = n_tokens;
    res->n_reused = prefix;

    logits = malloc((size_t)V * sizeof(float));
    if (!logits)
        return pio_error(PIO_STATUS_ERR_NOMEM, "generate: out of memory");
    if ((st = pio_sampler_new(&params->sampling, (int)V, n_valid, &sampler)) ||
        (st = pio_stop_matcher_new_list(params->stop, &stops)) ||
        (e->tok && (st = pio_detok_new(e->tok, true, &detok))))
        goto done;

    t0 = now_seconds();
    st = prefill(e, seq, tokens, prefix, n_tokens, logits, NULL);
    if (st) {
        pio_engine_seq_reset(e, seq);          /* the cache may hold part of the prompt */
        goto done;
    }
    res->prompt_seconds = now_seconds() - t0;

    t0 = now_seconds();
    for (;;) {
        const char *text = "";
        size_t len = 0;
        int32_t tok = pio_sampler_sample(sampler, logits, e->history[seq], e->n_history[seq]);
        if (tok < 0) {
            st = PIO_STATUS_ERR_INVALID_ARG;   /* message set by the sampler */
            break;
        }
        res->n_generated++;
        if (!params->ignore_eos && is_eos(e, tok)) {
            res->stop_reason = PIO_STOP_REASON_EOS;
            break;
        }
        if (detok && (st = pio_detok_push(detok, tok, &text, &len)))
            break;
        if (!emit(stops, tok, text, len, cb, user, &hit)) {
            res->stop_reason = PIO_STOP_REASON_CALLER;
            break;
        }
        if (hit) {
            res->stop_reason = PIO_STOP_REASON_STOP_STRING;
            break;
        }
        if (params->max_tokens >= 0 && res->n_generated >= params->max_tokens) {
            res->stop_reason = PIO_STOP_REASON_LENGTH;
            break;
        }
        if (e->n_history[seq] >= e->n_ctx) {
            res->stop_reason = PIO_STOP_REASON_CONTEXT;
            break;
        }
        st = decode_step(e, seq, tok, logits);
        if (st)
            break;
    }
    res->gen_seconds = now_seconds() - t0;

    /* release text still held for an incomplete character or a possible stop string */
    if (!st && !hit && res->stop_reason != PIO_STOP_REASON_CALLER) {
        const char *text = "";
        size_t len = 0;
        if (detok && !pio_detok_flush(detok, &text, &len) && len)
            emit(stops, -1, text, len, cb, user, &hit);
        if (!pio_stop_matcher_flush(stops, &sr) && sr.len && cb)
            cb(user, -1, sr.text, sr.len);
    }
done:
    pio_stop_matcher_free(stops);
    pio_detok_free(detok);
    pio_sampler_free(sampler);
    free(logits);
    return st;
}
