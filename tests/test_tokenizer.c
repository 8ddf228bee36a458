/*
 * test_tokenizer.c - the real Qwen3 tokenizer against the golden files in
 * the shared data (../shared/data, see its README.md):
 *   golden/tokenizer_qwen3.jsonl, golden/tokenizer_qwen2_llamacpp.jsonl
 * Every case must encode to exactly its ids; decode(ids) must give the NFC
 * form of its text; streaming decode must equal one-shot decode, with and
 * without skip_special. Also: the NFC fast path agrees with utf8proc on
 * every code point, invalid UTF-8 is refused, and lookups work.
 * Skips (77) when the shared data is absent.
 */
#include "check.h"
#include "pio/tokenizer.h"
#include "tokenizer/tok_int.h"

#include <pthread.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <utf8proc.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[n] = '\0'; *len = (size_t)n; }
    return buf;
}

/* Streaming decode of ids; *split counts pushes that held bytes back. */
static char *stream_decode(const pio_tokenizer *tok, const int32_t *ids, size_t n, bool skip, int *split)
{
    pio_detok *d;
    size_t cap = 64, len = 0;
    char *out = malloc(cap);
    if (!out || pio_detok_new(tok, skip, &d)) { free(out); return NULL; }
    for (size_t i = 0; i <= n; i++) {
        const char *p;
        size_t k;
        pio_status st = i < n ? pio_detok_push(d, ids[i], &p, &k) : pio_detok_flush(d, &p, &k);
        if (st) { free(out); out = NULL; break; }
        while (len + k + 1 > cap) {
            cap *= 2;
            char *q = realloc(out, cap);
            if (!q) abort();
            out = q;
        }
        memcpy(out + len, p, k);
        len += k;
        out[len] = '\0';
    }
    /* a second pass counts the pushes that left an incomplete character pending */
    if (split && out) {
        pio_detok_reset(d);
        for (size_t i = 0; i < n; i++) {
            const char *p;
            size_t k;
            pio_detok_push(d, ids[i], &p, &k);
            if (k == 0) (*split)++; /* every token has bytes: some were held back */
        }
    }
    pio_detok_free(d);
    return out;
}

/* Every golden case, kept for the threaded run. */
typedef struct golden {
    char *text;
    int32_t *ids;
    size_t n;
} golden;
static golden goldens[256];
static size_t n_goldens;

/* Run every case of one golden jsonl file. */
static void check_golden(const pio_tokenizer *tok, const char *path, int *n_cases, int *n_split)
{
    size_t len;
    char *buf = read_file(path, &len);
    CHECK(buf != NULL, "cannot read %s", path);
    if (!buf) return;
    int line = 0, before = check_n_fail;
    for (char *p = buf, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) nl = p + strlen(p) - 1;
        line++;
        if (nl == p) continue;
        cJSON *j = cJSON_ParseWithLength(p, (size_t)(nl - p) + 1);
        const cJSON *jt = cJSON_GetObjectItemCaseSensitive(j, "text");
        const cJSON *ji = cJSON_GetObjectItemCaseSensitive(j, "ids");
        CHECK(cJSON_IsString(jt) && cJSON_IsArray(ji), "%s:%d: bad case", path, line);
        if (!cJSON_IsString(jt) || !cJSON_IsArray(ji)) { cJSON_Delete(j); continue; }
        const char *text = jt->valuestring;
        (*n_cases)++;

        int32_t *ids = NULL;
        size_t n = 0;
        pio_status st = pio_tokenizer_encode(tok, text, strlen(text), &ids, &n);
        CHECK(st == PIO_STATUS_OK, "%s:%d: encode: %s", path, line, pio_last_error());
        size_t want_n = (size_t)cJSON_GetArraySize(ji);
        bool same = n == want_n;
        for (size_t k = 0; same && k < n; k++) same = ids[k] == cJSON_GetArrayItem(ji, (int)k)->valueint;
        if (!same) {
            size_t k = 0;
            while (k < n && k < want_n && ids[k] == cJSON_GetArrayItem(ji, (int)k)->valueint) k++;
            fprintf(stderr, "%s:%d: %zu ids, want %zu; first difference at %zu: got %d want %d\n", path, line,
                    n, want_n, k, k < n ? ids[k] : -1, k < want_n ? cJSON_GetArrayItem(ji, (int)k)->valueint : -1);
        }
        CHECK(same, "%s:%d: ids differ for \"%.60s\"", path, line, text);

        /* decode the golden ids: the NFC form of the text */
        int32_t *gold = malloc((want_n ? want_n : 1) * sizeof *gold);
        for (size_t k = 0; k < want_n; k++) gold[k] = cJSON_GetArrayItem(ji, (int)k)->valueint;
        char *dec = NULL;
        size_t dlen = 0;
        CHECK_OK(pio_tokenizer_decode(tok, gold, want_n, false, &dec, &dlen));
        char *nfc = (char *)utf8proc_NFC((const utf8proc_uint8_t *)text);
        CHECK(dec && nfc && !strcmp(dec, nfc) && dlen == strlen(nfc), "%s:%d: decode \"%.60s\" != NFC(text) \"%.60s\"",
              path, line, dec ? dec : "", nfc ? nfc : "");

        /* streaming equals one-shot, with and without special tokens */
        char *sd = stream_decode(tok, gold, want_n, false, n_split);
        CHECK(sd && dec && !strcmp(sd, dec), "%s:%d: streaming decode differs", path, line);
        free(sd);
        char *dec2 = NULL;
        CHECK_OK(pio_tokenizer_decode(tok, gold, want_n, true, &dec2, &dlen));
        sd = stream_decode(tok, gold, want_n, true, NULL);
        CHECK(sd && dec2 && !strcmp(sd, dec2), "%s:%d: streaming decode (skip_special) differs", path, line);
        free(sd);
        free(dec2);
        free(nfc);
        free(dec);
        if (n_goldens < sizeof goldens / sizeof goldens[0]) {
            goldens[n_goldens++] = (golden){ strdup(text), gold, want_n };
            gold = NULL;
        }
        free(gold);
        free(ids);
        cJSON_Delete(j);
    }
    printf("%s: %d lines, %s\n", path, line, check_n_fail == before ? "all pass" : "FAILURES");
    free(buf);
}

/* The NFC fast path (tok_normalize) agrees with utf8proc_NFC. */
static void check_nfc(const pio_tokenizer *tok)
{
    static const char *const bases[] = { "", "e", "\xE3\x81\x8B" /* か */, "\xEA\xB0\x80" /* 가 */,
                                         "\xE1\x84\x80" /* ᄀ */, "\xE0\xA4\x85" /* अ */ };
    int bad = 0;
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
        uint32_t limit = b == 0 ? 0x110000 : 0x20000;
        for (uint32_t cp = 1; cp < limit; cp++) {
            if (cp >= 0xD800 && cp <= 0xDFFF) continue;
            char s[16];
            size_t n = strlen(bases[b]);
            memcpy(s, bases[b], n);
            n += tok_utf8_encode(cp, s + n);
            s[n] = '\0';
            char *got = NULL;
            size_t glen = 0;
            if (tok_normalize(tok, s, n, &got, &glen)) { bad++; continue; }
            char *want = (char *)utf8proc_NFC((const utf8proc_uint8_t *)s);
            const char *g = got ? got : s;
            size_t gl = got ? glen : n;
            if (!want || strlen(want) != gl || memcmp(want, g, gl)) {
                if (bad < 5) fprintf(stderr, "NFC differs for base %zu + U+%04X\n", b, cp);
                bad++;
            }
            free(want);
            free(got);
        }
    }
    CHECK(bad == 0, "%d NFC differences", bad);
}

/* One thread: encode every golden case 3 times; returns the number of mismatches. */
static void *thread_encode(void *arg)
{
    const pio_tokenizer *tok = arg;
    size_t bad = 0;
    for (int rep = 0; rep < 3; rep++) {
        for (size_t i = 0; i < n_goldens; i++) {
            int32_t *ids;
            size_t n;
            if (pio_tokenizer_encode(tok, goldens[i].text, strlen(goldens[i].text), &ids, &n)) { bad++; continue; }
            if (n != goldens[i].n || (n && memcmp(ids, goldens[i].ids, n * sizeof *ids))) bad++;
            free(ids);
        }
    }
    return (void *)bad;
}

/* Threads share one tokenizer (and its word cache). */
static void check_threads(const pio_tokenizer *tok)
{
    pthread_t th[4];
    size_t bad = 0;
    for (int i = 0; i < 4; i++) CHECK(pthread_create(&th[i], NULL, thread_encode, (void *)tok) == 0, "thread");
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        bad += (size_t)r;
    }
    CHECK(bad == 0, "%zu mismatches when encoding from 4 threads", bad);
}

int main(void)
{
    const char *data = check_shared_data();
    if (!data) check_skip("shared data (../shared/data, or $PIO_SHARED/data) not found: golden tokenizer cases not run");
    char path[4200];
    pio_tokenizer *tok = NULL;

    snprintf(path, sizeof path, "%s/qwen3-tokenizer", data); /* a directory holding tokenizer.json */
    double t0 = now_s();
    CHECK_OK(pio_tokenizer_load(path, &tok));
    printf("loaded %s in %.3f s\n", path, now_s() - t0);
    if (!tok) return check_report("test_tokenizer");

    CHECK(pio_tokenizer_n_vocab(tok) == 151669, "n_vocab %d", pio_tokenizer_n_vocab(tok));
    CHECK(pio_tokenizer_token_to_id(tok, "<|im_end|>") == 151645, "im_end");
    CHECK(pio_tokenizer_token_to_id(tok, "<think>") == 151667, "think");
    CHECK(pio_tokenizer_token_to_id(tok, "Hello") == 9707, "Hello");
    CHECK(pio_tokenizer_is_special(tok, 151645) && !pio_tokenizer_is_special(tok, 151667) &&
          !pio_tokenizer_is_special(tok, 9707), "is_special");
    const char *t = pio_tokenizer_id_to_token(tok, 1879);
    CHECK(t && !strcmp(t, "\xC4\xA0world"), "id_to_token(1879) = %s", t ? t : "(null)");

    int n_cases = 0, n_split = 0;
    snprintf(path, sizeof path, "%s/golden/tokenizer_qwen3.jsonl", data);
    check_golden(tok, path, &n_cases, &n_split);
    snprintf(path, sizeof path, "%s/golden/tokenizer_qwen2_llamacpp.jsonl", data);
    check_golden(tok, path, &n_cases, &n_split);
    CHECK(n_cases == 63 + 47, "%d golden cases", n_cases);
    CHECK(n_split > 20, "only %d tokens ended inside a UTF-8 character: streaming not exercised", n_split);
    printf("golden cases: %d; tokens ending inside a character: %d\n", n_cases, n_split);

    /* invalid UTF-8 is refused with the offset */
    int32_t *ids = NULL;
    size_t n = 0;
    const char bad[] = "Hello \xF0\x9F\x98 world";
    CHECK(pio_tokenizer_encode(tok, bad, sizeof bad - 1, &ids, &n) == PIO_STATUS_ERR_UTF8, "bad UTF-8 accepted");
    CHECK(strstr(pio_last_error(), "invalid UTF-8 at byte offset 6 (byte 0xF0)") != NULL, "message: %s",
          pio_last_error());
    CHECK(ids == NULL, "no ids on error");

    /* a long run of one character goes through the heap merge path */
    size_t big = 100000;
    char *run = malloc(big);
    memset(run, 'a', big);
    CHECK_OK(pio_tokenizer_encode(tok, run, big, &ids, &n));
    char *back = NULL;
    size_t blen = 0;
    CHECK_OK(pio_tokenizer_decode(tok, ids, n, false, &back, &blen));
    CHECK(blen == big && back && !memcmp(back, run, big), "round trip of 100000 'a'");
    printf("100000 x 'a' -> %zu ids\n", n);
    free(back);
    free(ids);
    free(run);

    check_threads(tok);
    check_nfc(tok);
    pio_tokenizer_free(tok);
    for (size_t i = 0; i < n_goldens; i++) {
        free(goldens[i].text);
        free(goldens[i].ids);
    }
    return check_report("test_tokenizer");
}
