/*
 * weights.c - a model directory's weights: one safetensors file, or shards
 * named by model.safetensors.index.json. All tensors of all files sit in one
 * open-addressing hash table, so a lookup by name is O(1) expected even for
 * a 30B MoE's ~19000 tensors.
 */
#include "formats_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct pio_weights {
    char *dir;                   /* for messages */
    int n_files;
    pio_safetensors **files;     /* (n_files) owned; shards in name order */
    int n;
    const pio_tensor **tensors;  /* (n) file order, then header order; point into files,
                                    or into repl for converted tensors */
    size_t cap;                  /* hash slots, a power of two >= 2n */
    int *slots;                  /* (cap) index into tensors, -1 = empty */
    pio_tensor *repl;            /* (n) descriptors of tensors converted in memory
                                    (pio_weights_replace); NULL until the first */
    void **repl_data;            /* (n) their data, owned; NULL = tensor i is the file's */
    void *owner;                 /* pio_weights_wrap: the handle holding the tensors (GGUF) */
    void (*owner_free)(void *);
    bool file_backed;            /* wrapped tensors' data is a read-only file mapping */
};

/* FNV-1a, 64-bit: cheap and good enough for tensor names. */
static uint64_t w_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Slot holding `name`, or the empty slot where it would go. */
static size_t w_probe(const pio_weights *w, const char *name)
{
    size_t i = (size_t)w_hash(name) & (w->cap - 1);
    while (w->slots[i] >= 0 && strcmp(w->tensors[w->slots[i]]->name, name) != 0)
        i = (i + 1) & (w->cap - 1);
    return i;
}

/*
 * Gather the tensors of all opened files into w->tensors and the hash table.
 * A name in two files is an error naming both.
 */
static pio_status w_index_tensors(pio_weights *w)
{
    int total = 0;
    for (int f = 0; f < w->n_files; f++)
        total += pio_safetensors_count(w->files[f]);
    w->cap = 16;
    while (w->cap < (size_t)total * 2)
        w->cap *= 2;
    w->tensors = calloc((size_t)total + 1, sizeof *w->tensors);
    w->slots = malloc(w->cap * sizeof *w->slots);
    if (!w->tensors || !w->slots)
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory indexing %d tensors", w->dir, total);
    memset(w->slots, 0xff, w->cap * sizeof *w->slots);
    for (int f = 0; f < w->n_files; f++) {
        for (int i = 0; i < pio_safetensors_count(w->files[f]); i++) {
            const pio_tensor *t = pio_safetensors_at(w->files[f], i);
            size_t slot = w_probe(w, t->name);
            if (w->slots[slot] >= 0)
                return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\" is in both %s and %s", w->dir,
                                 t->name, w->tensors[w->slots[slot]]->file, t->file);
            w->slots[slot] = w->n;
            w->tensors[w->n++] = t;
        }
    }
    return PIO_STATUS_OK;
}

/* Open `dir/fname` as the only file. */
static pio_status w_open_single(pio_weights *w, const char *fname)
{
    pio_status st;
    char *path = pio_fmt_path_join(w->dir, fname);
    if (!path)
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", w->dir);
    w->files = calloc(1, sizeof *w->files);
    if (!w->files) {
        free(path);
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", w->dir);
    }
    st = pio_safetensors_open(path, &w->files[0]);
    if (st == PIO_STATUS_OK)
        w->n_files = 1;
    free(path);
    return st;
}

static int w_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A shard name must stay inside the model directory. */
static bool w_shard_name_ok(const char *s)
{
    if (s[0] == '\0' || s[0] == '/')
        return false;
    for (const char *p = s; (p = strstr(p, "..")) != NULL; p += 2)
        if ((p == s || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return false;
    return true;
}

/*
 * Sharded checkpoint: open each distinct shard named in `index_path`'s
 * weight_map, then check every listed tensor is in the shard the index names.
 */
static pio_status w_open_index(pio_weights *w, const char *index_path)
{
    pio_status st;
    char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    const cJSON *map, *e;
    const char **shards = NULL;
    int n_entries = 0, n_shards = 0;

    st = pio_fmt_read_file(index_path, PIO_FMT_MAX_JSON_FILE, &text, &len);
    if (st != PIO_STATUS_OK)
        return st;
    st = pio_fmt_json_parse_named(text, len, index_path, &root);
    if (st != PIO_STATUS_OK)
        goto free_text;
    map = pio_fmt_json_child(root, "weight_map");
    if (!map) {
        st = pio_error(PIO_STATUS_ERR_MISSING, "%s: missing \"weight_map\"", index_path);
        goto free_json;
    }
    if (!cJSON_IsObject(map)) {
        st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: \"weight_map\" is not a JSON object", index_path);
        goto free_json;
    }

    /* The distinct shard names, sorted. */
    n_entries = cJSON_GetArraySize(map);
    shards = calloc((size_t)n_entries + 1, sizeof *shards);
    if (!shards) {
        st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", index_path);
        goto free_json;
    }
    cJSON_ArrayForEach(e, map) {
        if (!cJSON_IsString(e) || !w_shard_name_ok(e->valuestring)) {
            st = pio_error(PIO_STATUS_ERR_FORMAT,
                           "%s: weight_map entry for tensor \"%s\" is not a file name inside the directory",
                           index_path, e->string);
            goto free_shards;
        }
        shards[n_shards++] = e->valuestring;
    }
    qsort(shards, (size_t)n_shards, sizeof *shards, w_cmp_str);
    {
        int u = 0;
        for (int i = 0; i < n_shards; i++)
            if (u == 0 || strcmp(shards[u - 1], shards[i]) != 0)
                shards[u++] = shards[i];
        n_shards = u;
    }

    w->files = calloc((size_t)n_shards + 1, sizeof *w->files);
    if (!w->files) {
        st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", index_path);
        goto free_shards;
    }
    for (int i = 0; i < n_shards; i++) {
        char *path = pio_fmt_path_join(w->dir, shards[i]);
        struct stat sb;
        if (!path) {
            st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", index_path);
            goto free_shards;
        }
        if (stat(path, &sb) != 0 && errno == ENOENT) {
            st = pio_error(PIO_STATUS_ERR_MISSING, "%s: shard \"%s\" named in the index is missing (%s)",
                           index_path, shards[i], path);
            free(path);
            goto free_shards;
        }
        st = pio_safetensors_open(path, &w->files[i]);
        free(path);
        if (st != PIO_STATUS_OK)
            goto free_shards;
        w->n_files++;
    }

    st = w_index_tensors(w);
    if (st != PIO_STATUS_OK)
        goto free_shards;

    /* Every tensor the index lists must be in the shard it names. */
    cJSON_ArrayForEach(e, map) {
        const char *const *sh = bsearch(&e->valuestring, shards, (size_t)n_shards, sizeof *shards, w_cmp_str);
        const pio_safetensors *file = w->files[sh - shards];
        if (!pio_safetensors_find(file, e->string)) {
            const pio_tensor *t = pio_weights_find(w, e->string);
            if (t)
                st = pio_error(PIO_STATUS_ERR_FORMAT,
                               "%s: tensor \"%s\" is listed for shard \"%s\" but found in %s", index_path,
                               e->string, e->valuestring, t->file);
            else
                st = pio_error(PIO_STATUS_ERR_MISSING,
                               "%s: tensor \"%s\" is listed for shard \"%s\" but that shard does not contain it",
                               index_path, e->string, e->valuestring);
            goto free_shards;
        }
    }

free_shards:
    free(shards);
free_json:
    cJSON_Delete(root);
free_text:
    free(text);
    return st;
}

/* No index, no model.safetensors: use the only *.safetensors file in the directory. */
static pio_status w_open_only_file(pio_weights *w)
{
    pio_status st = PIO_STATUS_OK;
    DIR *d = opendir(w->dir);
    struct dirent *de;
    char **names = NULL;
    int n = 0, cap = 0;

    if (!d)
        return pio_error(PIO_STATUS_ERR_IO, "%s: cannot open directory: %s", w->dir, strerror(errno));
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l <= 12 || strcmp(de->d_name + l - 12, ".safetensors") != 0)
            continue;
        if (n == cap) {
            int ncap = cap ? cap * 2 : 8;
            char **nn = realloc(names, (size_t)ncap * sizeof *names);
            if (!nn)
                goto nomem;
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = strdup(de->d_name)))
            goto nomem;
        n++;
    }
    if (n == 0) {
        st = pio_error(PIO_STATUS_ERR_MISSING,
                       "%s: no model.safetensors.index.json, model.safetensors or other *.safetensors file",
                       w->dir);
    } else if (n == 1) {
        st = w_open_single(w, names[0]);
    } else {
        char list[1024];
        size_t o = 0;
        qsort(names, (size_t)n, sizeof *names, w_cmp_str);
        list[0] = '\0';
        for (int i = 0; i < n && o < sizeof list; i++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", names[i]);
        st = pio_error(PIO_STATUS_ERR_MISSING,
                       "%s: %d .safetensors files (%s) and no model.safetensors.index.json to say which to use",
                       w->dir, n, list);
    }
    goto free_names;
nomem:
    st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory listing the directory", w->dir);
free_names:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return st;
}

static bool w_is_file(const char *dir, const char *name)
{
    struct stat sb;
    char *path = pio_fmt_path_join(dir, name);
    bool ok = path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
    free(path);
    return ok;
}

pio_status pio_weights_open_dir(const char *dir, pio_weights **out)
{
    pio_status st;
    pio_weights *w;
    struct stat sb;

    *out = NULL;
    if (stat(dir, &sb) != 0)
        return pio_error(errno == ENOENT ? PIO_STATUS_ERR_MISSING : PIO_STATUS_ERR_IO,
                         "%s: cannot open model directory: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return pio_error(PIO_STATUS_ERR_IO, "%s: not a directory", dir);
    w = calloc(1, sizeof *w);
    if (!w || !(w->dir = strdup(dir))) {
        free(w);
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", dir);
    }

    if (w_is_file(dir, "model.safetensors.index.json")) {
        char *index = pio_fmt_path_join(dir, "model.safetensors.index.json");
        st = index ? w_open_index(w, index) : pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", dir);
        free(index);
    } else {
        st = w_is_file(dir, "model.safetensors") ? w_open_single(w, "model.safetensors")
                                                 : w_open_only_file(w);
        if (st == PIO_STATUS_OK)
            st = w_index_tensors(w);
    }
    if (st != PIO_STATUS_OK) {
        pio_weights_free(w);
        return st;
    }
    *out = w;
    return PIO_STATUS_OK;
}

void pio_weights_free(pio_weights *w)
{
    if (!w)
        return;
    if (w->repl_data)
        for (int i = 0; i < w->n; i++)
            free(w->repl_data[i]);
    free(w->repl_data);
    free(w->repl);
    for (int i = 0; i < w->n_files; i++)
        pio_safetensors_free(w->files[i]);
    free(w->files);
    if (w->owner_free)
        w->owner_free(w->owner);
    free(w->tensors);
    free(w->slots);
    free(w->dir);
    free(w);
}

pio_status pio_weights_wrap(const char *label, const pio_tensor *tensors, int n, void *owner,
                            void (*owner_free)(void *), pio_weights **out)
{
    pio_weights *w = calloc(1, sizeof *w);

    *out = NULL;
    if (!w || !(w->dir = strdup(label))) {
        free(w);
        if (owner_free)
            owner_free(owner);
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", label);
    }
    w->owner = owner;
    w->owner_free = owner_free;
    w->cap = 16;
    while (w->cap < (size_t)n * 2)
        w->cap *= 2;
    w->tensors = calloc((size_t)n + 1, sizeof *w->tensors);
    w->slots = malloc(w->cap * sizeof *w->slots);
    if (!w->tensors || !w->slots) {
        pio_weights_free(w);
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory indexing %d tensors", label, n);
    }
    memset(w->slots, 0xff, w->cap * sizeof *w->slots);
    for (int i = 0; i < n; i++) {
        size_t slot = w_probe(w, tensors[i].name);
        if (w->slots[slot] >= 0) {
            pio_status st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: two tensors are named \"%s\"", label,
                                      tensors[i].name);
            pio_weights_free(w);
            return st;
        }
        w->slots[slot] = w->n;
        w->tensors[w->n++] = &tensors[i];
    }
    *out = w;
    return PIO_STATUS_OK;
}

int pio_weights_count(const pio_weights *w) { return w ? w->n : 0; }

int pio_weights_index(const pio_weights *w, const char *name)
{
    if (!w || !name || !w->slots)
        return -1;
    return w->slots[w_probe(w, name)];
}

void pio_weights_set_file_backed(pio_weights *w)
{
    if (w)
        w->file_backed = true;
}

bool pio_weights_is_file_data(const pio_weights *w, int i)
{
    return w && i >= 0 && i < w->n && !(w->repl_data && w->repl_data[i]) &&
           (w->n_files > 0 || w->file_backed);
}

void *pio_weights_owned_data(const pio_weights *w, int i)
{
    return w && i >= 0 && i < w->n && w->repl_data ? w->repl_data[i] : NULL;
}

/* Drop the process's pages of a read-only file mapping range; they are
 * re-read from the page cache if touched again. Only whole pages inside. */
void pio_weights_drop_pages(const void *data, size_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)data, e = a + len;
    if (page <= 0)
        return;
    a = (a + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    e &= ~((uintptr_t)page - 1);
    if (e > a)
        madvise((void *)a, e - a, MADV_DONTNEED);
}

void pio_weights_advise_hugepages(const pio_weights *w)
{
    const uintptr_t huge = PIO_FMT_HUGE_PAGE;
    int i;
    for (i = 0; w && i < w->n; i++) {
        const pio_tensor *t = w->tensors[i];
        uintptr_t a = (uintptr_t)t->data, e = a + t->nbytes;
        if (t->n_dims != 2 || pio_tensor_is_expert(t) || !pio_weights_is_file_data(w, i))
            continue;
        a = (a + huge - 1) & ~(huge - 1);
        e &= ~(huge - 1);
        if (e > a)
            madvise((void *)a, e - a, MADV_HUGEPAGE);
    }
}

pio_status pio_weights_replace(pio_weights *w, int i, const pio_tensor *t, void *data)
{
    if (!w || i < 0 || i >= w->n) {
        free(data);
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "weights: no tensor #%d to replace", i);
    }
    if (!w->repl) {
        w->repl = calloc((size_t)w->n, sizeof *w->repl);
        w->repl_data = calloc((size_t)w->n, sizeof *w->repl_data);
        if (!w->repl || !w->repl_data) {
            free(w->repl);
            free(w->repl_data);
            w->repl = NULL;
            w->repl_data = NULL;
            free(data);
            return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory replacing tensor \"%s\"", w->dir,
                             t->name);
        }
    }
    if (w->repl_data[i]) {
        if (w->repl_data[i] != data)           /* else converted again in place */
            free(w->repl_data[i]);
    } else if (pio_weights_is_file_data(w, i)) {   /* a read-only file mapping, never anonymous memory */
        pio_weights_drop_pages(w->tensors[i]->data, w->tensors[i]->nbytes);
    }
    w->repl[i] = *t;
    w->repl[i].name = w->tensors[i]->name;     /* the hash table keys on this string */
    w->repl[i].data = data;
    w->repl_data[i] = data;
    w->tensors[i] = &w->repl[i];
    return PIO_STATUS_OK;
}

const pio_tensor *pio_weights_at(const pio_weights *w, int i)
{
    return w && i >= 0 && i < w->n ? w->tensors[i] : NULL;
}

const pio_tensor *pio_weights_find(const pio_weights *w, const char *name)
{
    int idx;
    if (!w || !name || !w->slots)
        return NULL;
    idx = w->slots[w_probe(w, name)];
    return idx >= 0 ? w->tensors[idx] : NULL;
}

/* "[a, b]" into buf. */
static const char *w_shape_str(char *buf, size_t cap, int n, const int64_t *dims)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
    return buf;
}

pio_status pio_weights_get(const pio_weights *w, const char *name, int n_dims,
                           const int64_t *shape, const pio_tensor **out)
{
    const pio_tensor *t = pio_weights_find(w, name);
    char want[200], have[200];
    bool same;

    *out = NULL;
    if (!t)
        return pio_error(PIO_STATUS_ERR_MISSING, "tensor \"%s\" not found in %s (%d tensors in %d files)",
                         name, w ? w->dir : "(no weights)", pio_weights_count(w), w ? w->n_files : 0);
    same = t->n_dims == n_dims;
    for (int i = 0; same && i < n_dims; i++)
        same = t->shape[i] == shape[i];
    /* block-quantized types only for matrices (2-D, or 3-D stacks of MoE
     * expert matrices), whose rows are whole blocks */
    if (t->dtype != PIO_DTYPE_F32 && t->dtype != PIO_DTYPE_F16 && t->dtype != PIO_DTYPE_BF16 &&
        !(n_dims >= 2 && t->n_dims == n_dims && pio_dtype_is_quantized(t->dtype)))
        return pio_error(PIO_STATUS_ERR_SHAPE,
                         "%s: tensor \"%s\": dtype %s shape %s, expected %s shape %s",
                         t->file, name, pio_dtype_name(t->dtype),
                         w_shape_str(have, sizeof have, t->n_dims, t->shape),
                         n_dims >= 2 ? "F32, F16, BF16 or a block-quantized type" : "F32, F16 or BF16",
                         w_shape_str(want, sizeof want, n_dims, shape));
    if (!same)
        return pio_error(PIO_STATUS_ERR_SHAPE, "%s: tensor \"%s\": shape %s (%s), expected %s", t->file,
                         name, w_shape_str(have, sizeof have, t->n_dims, t->shape),
                         pio_dtype_name(t->dtype), w_shape_str(want, sizeof want, n_dims, shape));
    *out = t;
    return PIO_STATUS_OK;
}
