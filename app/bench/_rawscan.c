/* The contamination check's first pass over raw JSONL, compiled: which lines could hold a needle.
 *
 * scan(data, grams, gram, stride, casefold) -> (non-blank lines, [line numbers])
 *
 * Each line of `data` (raw JSON text) is normalised on the fly as the check normalises a field:
 * JSON escapes undone (a \uXXXX of an ASCII letter or digit gives that character, any other
 * escape gives nothing), ASCII letters and digits kept (lowercased with `casefold`), everything
 * else dropped. Non-ASCII characters are dropped too: without casefolding none of them
 * normalises to an ASCII character, so an occurrence of an ASCII needle survives (with
 * casefolding, a line holding one is returned, to be checked exactly). Every string field's
 * normalised text is a contiguous piece of its line's text, so no occurrence is missed.
 *
 * `grams` is every `gram`-byte piece of the (ASCII, normalised) needles, concatenated. Any needle
 * occurrence covers a piece that starts at a multiple of `stride` in its line's text
 * (gram + stride - 1 <= the shortest needle), so only those pieces are looked up. A line is
 * returned when one of them is a gram; the caller then checks that line exactly.
 * The GIL is released while the bytes are scanned.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t *hash;
    Py_ssize_t *index;      /* -1: empty slot */
    size_t mask;
    const unsigned char *grams;
    Py_ssize_t gram;
} GramSet;

static uint64_t hash_gram(const unsigned char *p, Py_ssize_t n)
{
    uint64_t h = (uint64_t)n * 0x9E3779B97F4A7C15ULL, v;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&v, p + i, 8);
        h = (h ^ v) * 0xC2B2AE3D27D4EB4FULL;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ULL;
    return h;
}

static size_t slot_of(uint64_t h, size_t mask) { return (size_t)(h ^ (h >> 31)) & mask; }

static int set_init(GramSet *s, const unsigned char *grams, Py_ssize_t count, Py_ssize_t gram)
{
    size_t cap = 16;
    while (cap < (size_t)count * 2) cap <<= 1;
    s->hash = malloc(cap * sizeof(uint64_t));
    s->index = malloc(cap * sizeof(Py_ssize_t));
    if (!s->hash || !s->index) return -1;
    s->mask = cap - 1;
    s->grams = grams;
    s->gram = gram;
    for (size_t i = 0; i < cap; i++) s->index[i] = -1;
    for (Py_ssize_t k = 0; k < count; k++) {
        const unsigned char *g = grams + k * gram;
        uint64_t h = hash_gram(g, gram);
        size_t i = slot_of(h, s->mask);
        while (s->index[i] >= 0 && !(s->hash[i] == h && !memcmp(grams + s->index[i] * gram, g, gram)))
            i = (i + 1) & s->mask;
        s->hash[i] = h;
        s->index[i] = k;
    }
    return 0;
}

static int set_has(const GramSet *s, const unsigned char *p)
{
    uint64_t h = hash_gram(p, s->gram);
    for (size_t i = slot_of(h, s->mask); s->index[i] >= 0; i = (i + 1) & s->mask)
        if (s->hash[i] == h && !memcmp(s->grams + s->index[i] * s->gram, p, s->gram)) return 1;
    return 0;
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int is_alnum(unsigned c) { return (c - '0' < 10u) || ((c | 32u) - 'a' < 26u); }

enum { DROP, KEEP, NEWLINE, BACKSLASH, HIGH };
static unsigned char kind[256], same[256], lower[256], inked[256];   /* inked: not what bytes.strip() removes */

static void init_tables(void)
{
    for (unsigned c = 0; c < 256; c++) {
        kind[c] = c >= 0x80 ? HIGH : is_alnum(c) ? KEEP : DROP;
        same[c] = (unsigned char)c;
        lower[c] = (unsigned char)(c >= 'A' && c <= 'Z' ? c | 32 : c);
        inked[c] = !(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0b' || c == '\x0c');
    }
    kind['\n'] = NEWLINE;
    kind['\\'] = BACKSLASH;
}

typedef struct {
    Py_ssize_t *lines;
    Py_ssize_t count, cap;
} Hits;

static int hits_add(Hits *h, Py_ssize_t line)
{
    if (h->count == h->cap) {
        Py_ssize_t cap = h->cap ? h->cap * 2 : 64;
        Py_ssize_t *grown = realloc(h->lines, cap * sizeof(Py_ssize_t));
        if (!grown) return -1;
        h->lines = grown;
        h->cap = cap;
    }
    h->lines[h->count++] = line;
    return 0;
}

/* Returns the number of non-blank lines, or -1 when out of memory. */
static Py_ssize_t scan_lines(const unsigned char *p, Py_ssize_t n, const GramSet *set,
                             Py_ssize_t stride, int casefold, unsigned char *text, Hits *hits)
{
    const unsigned char *out = casefold ? lower : same;
    Py_ssize_t line = 0, nonblank_lines = 0, w = 0, next_check = set->gram, i = 0;
    int nonblank = 0, hit = 0;
    while (i < n) {
        unsigned char c = p[i], k = kind[c];
        nonblank |= inked[c];
        if (k <= KEEP) {   /* the common case, without a branch on the byte's class */
            text[w] = out[c];
            w += k;
            i++;
        } else if (k == NEWLINE) {
            nonblank_lines += nonblank;
            if (hit && hits_add(hits, line) < 0) return -1;
            line++;
            w = 0;
            next_check = set->gram;
            nonblank = hit = 0;
            i++;
            continue;
        } else if (k == HIGH) {
            if (casefold) hit = 1;   /* may casefold to ASCII letters: checked exactly */
            i++;
        } else if (i + 1 < n && p[i + 1] != '\n') {   /* a JSON escape */
            if (p[i + 1] == 'u' && i + 5 < n) {
                int a = hex_digit(p[i + 2]), b = hex_digit(p[i + 3]), d = hex_digit(p[i + 4]),
                    e = hex_digit(p[i + 5]);
                if ((a | b | d | e) >= 0) {
                    unsigned cp = (unsigned)(a << 12 | b << 8 | d << 4 | e);
                    if (cp < 128 && is_alnum(cp))
                        text[w++] = out[cp];
                    else if (cp >= 128 && casefold)
                        hit = 1;
                    i += 6;
                } else {
                    i += 2;
                }
            } else {
                i += 2;   /* \" \\ \/ \b \f \n \r \t: none is a letter or digit */
            }
        } else {
            i++;
        }
        if (w == next_check) {
            if (set_has(set, text + w - set->gram)) hit = 1;
            next_check += stride;
        }
        if (hit) {   /* this line is returned: on to its end */
            const unsigned char *end = memchr(p + i, '\n', n - i);
            i = end ? end - p : n;
        }
    }
    if (n > 0 && p[n - 1] != '\n') {
        nonblank_lines += nonblank;
        if (hit && hits_add(hits, line) < 0) return -1;
    }
    return nonblank_lines;
}

static PyObject *scan(PyObject *self, PyObject *args)
{
    Py_buffer data, grams;
    Py_ssize_t gram, stride;
    int casefold;
    if (!PyArg_ParseTuple(args, "y*y*nnp", &data, &grams, &gram, &stride, &casefold)) return NULL;
    PyObject *result = NULL;
    GramSet set = {0};
    Hits hits = {0};
    unsigned char *text = NULL;
    if (gram < 1 || stride < 1 || grams.len % gram) {
        PyErr_SetString(PyExc_ValueError, "gram and stride must be positive, grams whole grams");
        goto done;
    }
    text = malloc(data.len + 1);
    if (!text || set_init(&set, grams.buf, grams.len / gram, gram) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t nonblank;
    Py_BEGIN_ALLOW_THREADS
    nonblank = scan_lines(data.buf, data.len, &set, stride, casefold, text, &hits);
    Py_END_ALLOW_THREADS
    if (nonblank < 0) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject *lines = PyList_New(hits.count);
    if (!lines) goto done;
    for (Py_ssize_t k = 0; k < hits.count; k++) {
        PyObject *v = PyLong_FromSsize_t(hits.lines[k]);
        if (!v) {
            Py_DECREF(lines);
            goto done;
        }
        PyList_SET_ITEM(lines, k, v);
    }
    result = Py_BuildValue("(nN)", nonblank, lines);
done:
    free(text);
    free(set.hash);
    free(set.index);
    free(hits.lines);
    PyBuffer_Release(&data);
    PyBuffer_Release(&grams);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(data, grams, gram, stride, casefold) -> (non-blank lines, line numbers to check)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rawscan", NULL, -1, methods};

PyMODINIT_FUNC PyInit__rawscan(void)
{
    init_tables();
    return PyModule_Create(&module);
}
