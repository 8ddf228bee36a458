/*
 * cmd_quantize.c - `pio quantize`: a Hugging Face model directory to one
 * GGUF file with its matrices in the chosen type (GGML's blocks, made by our
 * reference quantizers), llama.cpp's names, metadata and tokenizer. The file
 * loads in pio (`-m out.gguf`) without re-quantizing, and in llama.cpp.
 */
#include "cli/cli.h"
#include "pio/formats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void quantize_usage(FILE *f)
{
    fprintf(f, "usage: pio quantize -m DIR -o OUT.gguf [--dtype TYPE] [--override PATTERN=TYPE ...]\n\n"
               "Write the model in DIR (config.json, *.safetensors, tokenizer.json) as a GGUF\n"
               "file whose matrices are stored as TYPE. Norms and other 1-D tensors stay F32;\n"
               "a matrix whose rows are not whole blocks of TYPE is written as Q8_0 (for the\n"
               "K-quants) or F16, as llama.cpp does. Architectures: Qwen3, Qwen3-MoE.\n\n"
               "options:\n"
               "  -m, --model DIR        Hugging Face model directory\n"
               "  -o, --output FILE      the GGUF file to write (replaced if it exists)\n"
               "      --dtype TYPE       q8_0 (default), q4_0, q4_k, q6_k, bf16, f16, f32\n"
               "      --override P=TYPE  tensors whose HF or GGUF name matches the glob P get\n"
               "                         TYPE (repeatable; the last match wins), e.g.\n"
               "                         --override 'output.weight=q6_k' --override '*.attn_v.*=q8_0'\n"
               "  -t, --threads N        threads quantizing rows (default: all cores)\n"
               "  -q, --quiet            no per-tensor lines\n"
               "  -h, --help             this help\n");
}

static void quantize_log(const char *line)
{
    fprintf(stderr, "  %s\n", line);
}

int pio_cmd_quantize(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL, *dtype_name = "q8_0";
    char *overrides = NULL;
    size_t ov_len = 0;
    int n_threads = 0, dt, rc = 2;
    bool quiet = false;
    pio_gguf_convert_stats stats;
    struct timespec t0, t1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            quantize_usage(stdout);
            free(overrides);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_val) {
            dir = argv[++i];
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has_val) {
            out = argv[++i];
        } else if (!strcmp(a, "--dtype") && has_val) {
            dtype_name = argv[++i];
        } else if (!strcmp(a, "--override") && has_val) {
            const char *v = argv[++i];
            size_t n = strlen(v);
            char *p = realloc(overrides, ov_len + n + 2);
            if (!p) {
                free(overrides);
                return pio_cli_fail("quantize: out of memory");
            }
            overrides = p;
            if (ov_len)
                overrides[ov_len++] = ',';
            memcpy(overrides + ov_len, v, n + 1);
            ov_len += n;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && has_val) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 1024) {
                fprintf(stderr, "pio quantize: -t needs a thread count 0..1024, got \"%s\"\n", argv[i]);
                goto usage_error;
            }
            n_threads = (int)v;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else {
            fprintf(stderr, "pio quantize: unknown option or missing value: \"%s\"\n", a);
            goto usage_error;
        }
    }
    if (!dir || !out) {
        fprintf(stderr, "pio quantize: -m DIR and -o OUT.gguf are required\n");
        goto usage_error;
    }
    dt = pio_dtype_from_name(dtype_name);
    if (dt < 0 || !(dt == PIO_DTYPE_F32 || dt == PIO_DTYPE_F16 || dt == PIO_DTYPE_BF16 || dt == PIO_DTYPE_Q8_0 ||
                    dt == PIO_DTYPE_Q4_0 || dt == PIO_DTYPE_Q4_K || dt == PIO_DTYPE_Q6_K)) {
        fprintf(stderr, "pio quantize: --dtype \"%s\" is not one of q8_0, q4_0, q4_k, q6_k, bf16, f16, f32\n",
                dtype_name);
        goto usage_error;
    }

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!quiet)
        fprintf(stderr, "pio quantize: %s -> %s (%s)\n", dir, out, pio_dtype_name((pio_dtype)dt));
    if (pio_gguf_convert_dir(dir, out, (pio_dtype)dt, overrides, n_threads, quiet ? NULL : quantize_log, &stats)) {
        char msg[2300];
        snprintf(msg, sizeof msg, "quantize: %s", pio_last_error());
        free(overrides);
        return pio_cli_fail(msg);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "pio quantize: wrote %s: %d tensors (%d in a fallback type), %.1f MB -> %.1f MB in %.1f s\n",
            out, stats.n_tensors, stats.n_fallback, (double)stats.bytes_in / 1e6, (double)stats.bytes_out / 1e6,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    rc = 0;
    free(overrides);
    return rc;

usage_error:
    free(overrides);
    fprintf(stderr, "(pio quantize --help for usage)\n");
    return 2;
}
