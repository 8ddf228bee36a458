/*
 * test_plugins.c - the plugin manager: table validation, registration,
 * lookup, selection for a config, loading files and directories, and (when
 * built) the real qwen3 plugin from $PIO_BUILD_DIR/plugins.
 */
#include "pio/plugin.h"
#include "check.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- built-in test tables ------------------------------------------------ */

static pio_status stub_initialize(pio_plugin_ctx **ctx, const pio_options *opts)
{
    *ctx = NULL;
    return PIO_STATUS_OK;
}
static pio_status stub_load_model(pio_plugin_ctx *ctx, const pio_model_files *files)
{
    return PIO_STATUS_OK;
}
static pio_status stub_infer(pio_plugin_ctx *ctx, const pio_batch *b, pio_kv *kv, float *logits)
{
    return PIO_STATUS_OK;
}
static pio_status stub_info(pio_plugin_ctx *ctx, pio_model_info *info)
{
    return PIO_STATUS_OK;
}
static void stub_cleanup(pio_plugin_ctx *ctx) {}

/* alpha runs only its own model_type, and only with a vocabulary. A
 * supports_config must be this strict: selection also asks it about
 * architectures the plugin does not list. */
static bool alpha_supports(const pio_hf_config *cfg)
{
    return strcmp(cfg->model_type, "alpha") == 0 && cfg->vocab_size > 0;
}
/* catchall lists no architecture but takes model_type "catch". */
static bool catchall_supports(const pio_hf_config *cfg)
{
    return strcmp(cfg->model_type, "catch") == 0;
}

#define STUB_METHODS \
    .initialize = stub_initialize, .load_model = stub_load_model, .infer = stub_infer, \
    .get_model_info = stub_info, .cleanup = stub_cleanup

static const char *const alpha_archs[] = { "AlphaForCausalLM", NULL };
static const char *const beta_archs[] = { "BetaForCausalLM", "AlphaForCausalLM", NULL };

static const pio_model_plugin alpha = {
    .abi_version = PIO_PLUGIN_ABI_VERSION, .name = "alpha", .description = "test alpha",
    .hf_architectures = alpha_archs, .supports_config = alpha_supports, STUB_METHODS,
};
static const pio_model_plugin beta = {
    .abi_version = PIO_PLUGIN_ABI_VERSION, .name = "beta", .description = "test beta",
    .hf_architectures = beta_archs, STUB_METHODS,
};
static const pio_model_plugin catchall = {
    .abi_version = PIO_PLUGIN_ABI_VERSION, .name = "catchall",
    .supports_config = catchall_supports, STUB_METHODS,
};
static const pio_model_plugin alpha_again = {   /* same name as alpha */
    .abi_version = PIO_PLUGIN_ABI_VERSION, .name = "alpha",
    .hf_architectures = beta_archs, STUB_METHODS,
};
static const pio_model_plugin wrong_abi = {
    .abi_version = 7, .name = "future", .hf_architectures = alpha_archs, STUB_METHODS,
};
static const pio_model_plugin no_name = {
    .abi_version = PIO_PLUGIN_ABI_VERSION, .hf_architectures = alpha_archs, STUB_METHODS,
};
static const pio_model_plugin no_infer = {
    .abi_version = PIO_PLUGIN_ABI_VERSION, .name = "noinfer", .hf_architectures = alpha_archs,
    .initialize = stub_initialize, .load_model = stub_load_model,
    .get_model_info = stub_info, .cleanup = stub_cleanup,
};
static const pio_model_plugin no_cleanup = {
    .abi_version = PIO_PLUGIN_ABI_VERSION, .name = "nocleanup", .hf_architectures = alpha_archs,
    .initialize = stub_initialize, .load_model = stub_load_model, .infer = stub_infer,
    .get_model_info = stub_info,
};

/* A config with only what selection reads. */
static void make_cfg(pio_hf_config *cfg, const char *arch, const char *model_type, int64_t vocab)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->path, sizeof cfg->path, "config.json");
    snprintf(cfg->architecture, sizeof cfg->architecture, "%s", arch);
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", model_type);
    cfg->vocab_size = vocab;
}

static bool contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_validate(void)
{
    pio_status st;
    CHECK_OK(pio_plugin_validate(&alpha, "alpha.so"));
    CHECK_OK(pio_plugin_validate(&beta, NULL));   /* optional supports_config NULL */
    CHECK_OK(pio_plugin_validate(&catchall, NULL)); /* no architectures listed */

    st = pio_plugin_validate(NULL, "null.so");
    CHECK(st == PIO_STATUS_ERR_MISSING, "NULL table: %s", pio_status_name(st));
    CHECK(contains(pio_last_error(), "null.so"), "message: %s", pio_last_error());

    st = pio_plugin_validate(&wrong_abi, "/x/future.so");
    CHECK(st == PIO_STATUS_ERR_ABI, "ABI 7: %s", pio_status_name(st));
    {
        char want[96];
        snprintf(want, sizeof want, "/x/future.so: plugin ABI version 7, this pio expects %u",
                 (unsigned)PIO_PLUGIN_ABI_VERSION);
        CHECK(strcmp(pio_last_error(), want) == 0, "message: %s", pio_last_error());
    }

    st = pio_plugin_validate(&no_name, "anon.so");
    CHECK(st == PIO_STATUS_ERR_MISSING, "no name: %s", pio_status_name(st));
    CHECK(contains(pio_last_error(), "anon.so") && contains(pio_last_error(), "name"),
          "message: %s", pio_last_error());

    st = pio_plugin_validate(&no_infer, "noinfer.so");
    CHECK(st == PIO_STATUS_ERR_MISSING, "no infer: %s", pio_status_name(st));
    CHECK(contains(pio_last_error(), "noinfer.so") && contains(pio_last_error(), "infer"),
          "message: %s", pio_last_error());

    st = pio_plugin_validate(&no_cleanup, "nocleanup.so");
    CHECK(st == PIO_STATUS_ERR_MISSING && contains(pio_last_error(), "cleanup"),
          "no cleanup: %s: %s", pio_status_name(st), pio_last_error());
}

static void test_register_find_select(void)
{
    pio_status st;
    pio_hf_config cfg;
    const pio_model_plugin *p = NULL;
    const char *origin = NULL;

    pio_plugins_reset();
    CHECK(pio_plugins_count() == 0, "count after reset %d", pio_plugins_count());

    /* Nothing loaded: the message says so. */
    make_cfg(&cfg, "AlphaForCausalLM", "alpha", 10);
    st = pio_plugins_select(&cfg, &p);
    CHECK(st == PIO_STATUS_ERR_UNSUPPORTED && p == NULL, "empty select: %s", pio_status_name(st));
    CHECK(contains(pio_last_error(), "(loaded: none)"), "message: %s", pio_last_error());

    CHECK_OK(pio_plugins_register(&alpha, "builtin:alpha"));
    CHECK_OK(pio_plugins_register(&beta, "builtin:beta"));
    CHECK(pio_plugins_count() == 2, "count %d", pio_plugins_count());

    /* Refused: wrong ABI, invalid table, duplicate name. Nothing added. */
    st = pio_plugins_register(&wrong_abi, "builtin:future");
    CHECK(st == PIO_STATUS_ERR_ABI, "register ABI 7: %s", pio_status_name(st));
    st = pio_plugins_register(&no_infer, "builtin:noinfer");
    CHECK(st == PIO_STATUS_ERR_MISSING, "register no infer: %s", pio_status_name(st));
    st = pio_plugins_register(&alpha_again, "builtin:alpha2");
    CHECK(st != PIO_STATUS_OK, "duplicate name accepted");
    CHECK(contains(pio_last_error(), "\"alpha\"") && contains(pio_last_error(), "already") &&
          contains(pio_last_error(), "builtin:alpha2") &&
          contains(pio_last_error(), "builtin:alpha"),
          "duplicate message: %s", pio_last_error());
    CHECK(pio_plugins_count() == 2, "count after refusals %d", pio_plugins_count());

    /* find / at */
    CHECK(pio_plugins_find("alpha") == &alpha, "find alpha");
    CHECK(pio_plugins_find("beta") == &beta, "find beta");
    CHECK(pio_plugins_find("gamma") == NULL, "find gamma");
    CHECK(pio_plugins_find(NULL) == NULL, "find NULL");
    CHECK(pio_plugins_at(0, &origin) == &alpha && origin && strcmp(origin, "builtin:alpha") == 0,
          "at 0: %s", origin ? origin : "(null)");
    CHECK(pio_plugins_at(1, NULL) == &beta, "at 1");
    CHECK(pio_plugins_at(2, NULL) == NULL && pio_plugins_at(-1, NULL) == NULL, "at out of range");

    /* Listed architecture and supports_config accepts: the first lister. */
    make_cfg(&cfg, "AlphaForCausalLM", "alpha", 10);
    p = NULL;
    CHECK_OK(pio_plugins_select(&cfg, &p));
    CHECK(p == &alpha, "select Alpha -> %s", p ? p->name : "(null)");

    /* alpha refuses vocab 0; beta lists Alpha too and has no supports_config. */
    make_cfg(&cfg, "AlphaForCausalLM", "alpha", 0);
    p = NULL;
    CHECK_OK(pio_plugins_select(&cfg, &p));
    CHECK(p == &beta, "select Alpha/vocab 0 -> %s", p ? p->name : "(null)");

    make_cfg(&cfg, "BetaForCausalLM", "beta", 10);
    p = NULL;
    CHECK_OK(pio_plugins_select(&cfg, &p));
    CHECK(p == &beta, "select Beta -> %s", p ? p->name : "(null)");

    /* Unknown architecture: the exact message. */
    make_cfg(&cfg, "FooForCausalLM", "foo", 10);
    p = &alpha;
    st = pio_plugins_select(&cfg, &p);
    CHECK(st == PIO_STATUS_ERR_UNSUPPORTED && p == NULL, "select Foo: %s", pio_status_name(st));
    CHECK(strcmp(pio_last_error(), "config.json: architecture \"FooForCausalLM\" is not "
                                   "supported by any plugin (loaded: alpha, beta)") == 0,
          "message: %s", pio_last_error());

    /* A plugin with no list but a supports_config that accepts is a fallback. */
    CHECK_OK(pio_plugins_register(&catchall, NULL));
    make_cfg(&cfg, "WhateverForCausalLM", "catch", 10);
    p = NULL;
    CHECK_OK(pio_plugins_select(&cfg, &p));
    CHECK(p == &catchall, "select catch -> %s", p ? p->name : "(null)");
    CHECK(pio_plugins_at(2, &origin) == &catchall && contains(origin, "built-in"),
          "NULL origin label: %s", origin ? origin : "(null)");

    /* Architectures nobody lists reach a supports_config that accepts. */
    make_cfg(&cfg, "AlphaV2ForCausalLM", "alpha", 10);
    p = NULL;
    CHECK_OK(pio_plugins_select(&cfg, &p));
    CHECK(p == &alpha, "select AlphaV2 -> %s", p ? p->name : "(null)");

    /* Only a lister that refuses: the message says who refused. */
    pio_plugins_reset();
    CHECK_OK(pio_plugins_register(&alpha, "builtin:alpha"));
    make_cfg(&cfg, "AlphaForCausalLM", "alpha", 0);
    st = pio_plugins_select(&cfg, &p);
    CHECK(st == PIO_STATUS_ERR_UNSUPPORTED, "refused: %s", pio_status_name(st));
    CHECK(contains(pio_last_error(), "alpha lists it but refused"), "message: %s",
          pio_last_error());

    /* Missing "architectures". */
    make_cfg(&cfg, "", "x", 10);
    st = pio_plugins_select(&cfg, &p);
    CHECK(st == PIO_STATUS_ERR_UNSUPPORTED && contains(pio_last_error(), "architectures"),
          "no architecture: %s", pio_last_error());

    pio_plugins_reset();
    CHECK(pio_plugins_count() == 0, "count after reset %d", pio_plugins_count());
}

/* Write `text` to `path`. */
static bool write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fputs(text, f);
    return fclose(f) == 0;
}

static void test_load_files(void)
{
    pio_status st;
    int n = -1;
    char tmp[] = "/tmp/pio_test_plugins_XXXXXX";
    char path[512];

    pio_plugins_reset();
    st = pio_plugins_load_file("/nonexistent/dir/pio_nothing.so");
    CHECK(st == PIO_STATUS_ERR_IO, "missing file: %s", pio_status_name(st));
    CHECK(contains(pio_last_error(), "/nonexistent/dir/pio_nothing.so"), "message: %s",
          pio_last_error());

    CHECK_OK(pio_plugins_load_directory("/nonexistent/plugin/dir", &n));
    CHECK(n == 0, "nonexistent dir loaded %d", n);

    if (!mkdtemp(tmp)) {
        CHECK(0, "mkdtemp failed");
        return;
    }
    n = -1;
    CHECK_OK(pio_plugins_load_directory(tmp, &n));
    CHECK(n == 0 && pio_plugins_count() == 0, "empty dir loaded %d", n);
    CHECK(pio_plugins_load_errors()[0] == '\0', "errors: %s", pio_plugins_load_errors());

    /* A file named *.so that is not an ELF object; a non-.so file is ignored. */
    snprintf(path, sizeof path, "%s/broken.so", tmp);
    CHECK(write_file(path, "not an ELF file\n"), "write %s", path);
    st = pio_plugins_load_file(path);
    CHECK(st == PIO_STATUS_ERR_FORMAT, "non-ELF: %s", pio_status_name(st));
    CHECK(contains(pio_last_error(), "broken.so"), "message: %s", pio_last_error());
    snprintf(path, sizeof path, "%s/README.txt", tmp);
    CHECK(write_file(path, "not a plugin\n"), "write %s", path);

    n = -1;
    CHECK_OK(pio_plugins_load_directory(tmp, &n));
    CHECK(n == 0, "broken dir loaded %d", n);
    CHECK(contains(pio_plugins_load_errors(), "broken.so") &&
          !contains(pio_plugins_load_errors(), "README"),
          "errors: %s", pio_plugins_load_errors());

    /* A directory path that is a file. */
    st = pio_plugins_load_directory(path, &n);
    CHECK(st == PIO_STATUS_ERR_IO, "file as dir: %s", pio_status_name(st));

    snprintf(path, sizeof path, "%s/broken.so", tmp);
    unlink(path);
    snprintf(path, sizeof path, "%s/README.txt", tmp);
    unlink(path);
    rmdir(tmp);

    pio_plugins_reset();
    CHECK(pio_plugins_load_errors()[0] == '\0', "errors after reset: %s",
          pio_plugins_load_errors());
}

/* libpio.so is a real shared object without the entry symbol. */
static void test_not_a_plugin(const char *build)
{
    char path[1024];
    struct stat sb;
    snprintf(path, sizeof path, "%s/libpio.so", build);
    if (stat(path, &sb) != 0) {
        printf("note: %s absent; not-a-plugin check skipped\n", path);
        return;
    }
    pio_plugins_reset();
    pio_status st = pio_plugins_load_file(path);
    CHECK(st == PIO_STATUS_ERR_MISSING, "libpio.so: %s", pio_status_name(st));
    CHECK(contains(pio_last_error(), "libpio.so") &&
          contains(pio_last_error(), PIO_PLUGIN_ENTRY_SYMBOL),
          "message: %s", pio_last_error());
    CHECK(pio_plugins_count() == 0, "count %d", pio_plugins_count());
}

/* The in-tree qwen3 plugin, when the lead's build has produced it. */
static void test_qwen3(const char *build)
{
    char path[1100], dir[1024];
    struct stat sb;
    int n = -1;
    const char *origin = NULL;
    snprintf(dir, sizeof dir, "%s/plugins", build);
    snprintf(path, sizeof path, "%s/plugins/pio_qwen3.so", build);
    if (stat(path, &sb) != 0) {
        printf("note: %s absent; qwen3 plugin checks skipped\n", path);
        return;
    }
    pio_plugins_reset();
    CHECK_OK(pio_plugins_load_file(path));
    const pio_model_plugin *q = pio_plugins_find("qwen3");
    CHECK(q != NULL, "qwen3 not registered (count %d)", pio_plugins_count());
    if (!q)
        return;
    CHECK(q->abi_version == PIO_PLUGIN_ABI_VERSION, "abi %u", (unsigned)q->abi_version);
    bool listed = false;
    for (const char *const *a = q->hf_architectures; a && *a; a++)
        listed |= strcmp(*a, "Qwen3ForCausalLM") == 0;
    CHECK(listed, "qwen3 does not list Qwen3ForCausalLM");
    CHECK(pio_plugins_at(0, &origin) == q && contains(origin, "pio_qwen3.so"), "origin %s",
          origin ? origin : "(null)");

    /* The same file again (directly or through its directory) is a no-op. */
    CHECK_OK(pio_plugins_load_file(path));
    CHECK(pio_plugins_count() == 1, "reload: count %d", pio_plugins_count());
    int before = pio_plugins_count();
    CHECK_OK(pio_plugins_load_directory(dir, &n));
    CHECK(pio_plugins_find("qwen3") == q && pio_plugins_count() == before + n,
          "reload dir: n %d count %d", n, pio_plugins_count());
    CHECK(!contains(pio_plugins_load_errors(), "pio_qwen3.so"), "reload errors: %s",
          pio_plugins_load_errors());

    /* A built-in table may not take its name. */
    static const pio_model_plugin fake = {
        .abi_version = PIO_PLUGIN_ABI_VERSION, .name = "qwen3",
        .hf_architectures = alpha_archs, STUB_METHODS,
    };
    pio_status st = pio_plugins_register(&fake, "builtin:fake-qwen3");
    CHECK(st != PIO_STATUS_OK && contains(pio_last_error(), "pio_qwen3.so"),
          "fake qwen3: %s", pio_last_error());

    /* $PIO_PLUGIN_PATH: empty and missing entries are skipped. */
    char env[2200];
    snprintf(env, sizeof env, "/nonexistent/a::%s:/nonexistent/b", dir);
    pio_plugins_reset();
    setenv("PIO_PLUGIN_PATH", env, 1);
    CHECK_OK(pio_plugins_load_default());
    CHECK(pio_plugins_find("qwen3") != NULL, "load_default did not find qwen3");
    int count = pio_plugins_count();
    CHECK_OK(pio_plugins_load_default());   /* once per process */
    CHECK(pio_plugins_count() == count, "second load_default changed count");
    /* A duplicate in another directory is skipped with a note. */
    pio_plugins_reset();
    CHECK_OK(pio_plugins_register(&fake, "builtin:fake-qwen3"));
    CHECK_OK(pio_plugins_load_directory(dir, &n));
    CHECK(pio_plugins_find("qwen3") == &fake &&
          contains(pio_plugins_load_errors(), "pio_qwen3.so: a plugin named \"qwen3\" is "
                                              "already registered (from builtin:fake-qwen3)"),
          "duplicate dir: errors %s", pio_plugins_load_errors());
    pio_plugins_reset();
    unsetenv("PIO_PLUGIN_PATH");
}

/* Registration and lookup from several threads at once. */
enum { THREADS = 4, PER_THREAD = 16 };
static pio_model_plugin thread_tables[THREADS][PER_THREAD];
static char thread_names[THREADS][PER_THREAD][16];

static void *register_many(void *arg)
{
    int t = (int)(intptr_t)arg, failures = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        pio_model_plugin *p = &thread_tables[t][i];
        snprintf(thread_names[t][i], sizeof thread_names[t][i], "t%d_%d", t, i);
        *p = beta;
        p->name = thread_names[t][i];
        failures += pio_plugins_register(p, "thread") != PIO_STATUS_OK;
        failures += pio_plugins_find(p->name) != p;
        failures += pio_plugins_count() < i + 1;
    }
    return (void *)(intptr_t)failures;
}

static void test_threads(void)
{
    pthread_t th[THREADS];
    int failures = 0;
    pio_plugins_reset();
    for (int t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, register_many, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++) {
        void *r;
        pthread_join(th[t], &r);
        failures += (int)(intptr_t)r;
    }
    CHECK(failures == 0 && pio_plugins_count() == THREADS * PER_THREAD,
          "threads: %d failures, count %d", failures, pio_plugins_count());
    pio_plugins_reset();
}

int main(void)
{
    const char *build = getenv("PIO_BUILD_DIR");

    test_validate();
    test_register_find_select();
    test_load_files();
    test_threads();
    if (build) {
        test_not_a_plugin(build);
        test_qwen3(build);
    } else {
        printf("note: PIO_BUILD_DIR not set; checks on real shared objects skipped\n");
    }
    pio_plugins_reset();
    return check_report("test_plugins");
}
