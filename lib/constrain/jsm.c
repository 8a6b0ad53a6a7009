/* jsm.c — stepping the JSON byte machine (see jsm.h). */
#include "constrain/jsm.h"

#include <string.h>

#include "core/alloc.h"

/* Sub-states of the container frames. */
enum { R_START, R_AFTER };
enum { O_OPEN, O_KEY, O_KEYSTR, O_COLON, O_VALUE, O_AFTER, O_COMMA };
enum { A_OPEN, A_AFTER, A_COMMA };
/* String frame sub-states; b of S_UTF8 packs need | lo << 8 | hi << 16,
 * b of S_HEX packs digits read | (first digit was 'd') << 4. */
enum { S_NORMAL, S_ESC, S_HEX, S_UTF8 };

/* Frame results */
enum { F_REJECT, F_OK, F_DONE, F_PASS };

static int is_ws(uint8_t c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

static uint32_t dec(uint32_t v) { return v == GF_JSM_NONE ? v : v ? v - 1 : 0; }

void gf_jsm_free(gf_jsm *m)
{
    if (!m)
        return;
    gf_free(m->nodes);
    gf_free(m->props);
    gf_free(m->lit);
    memset(m, 0, sizeof *m);
}

void gf_jsm_start(const gf_jsm *m, gf_jstate *s)
{
    memset(s, 0, sizeof *s - sizeof s->f);
    memset(&s->f[0], 0, sizeof s->f[0]);
    s->depth = 1;
    s->f[0].kind = GF_JF_ROOT;
    s->f[0].sub = R_START;
    s->f[0].ws_max = 1;
    s->f[0].node = m->root;
}

/* Pushes a frame for a value of node `n` starting with byte c.  F_OK when
 * c starts such a value. */
static int push_value(const gf_jsm *m, gf_jstate *s, uint32_t n, uint8_t c)
{
    const gf_jnode *node = &m->nodes[n];
    if (node->kind == GF_JN_UNION) {
        uint32_t alt = c == '"'                           ? node->alt[0]
                       : (c == '-' || (c >= '0' && c <= '9')) ? node->alt[1]
                       : c == '{'                         ? node->alt[2]
                       : c == '['                         ? node->alt[3]
                                                          : node->alt[4];
        if (alt == GF_JSM_NONE)
            return F_REJECT;
        n = alt;
        node = &m->nodes[n];
    }
    uint32_t depth = s->base + s->depth;
    if (depth >= GF_JSM_MAX_DEPTH)
        return F_REJECT;
    gf_jframe f;
    memset(&f, 0, sizeof f);
    f.node = n;
    uint32_t ws_max = 1 + 2 * depth;
    switch (node->kind) {
    case GF_JN_STRING:
        if (c != '"')
            return F_REJECT;
        f.kind = GF_JF_STR;
        f.a = node->max_len;
        f.b = node->min_len;
        break;
    case GF_JN_NUMBER:
        if (!gf_num_begin(node, &f, c))
            return F_REJECT;
        f.node = n;
        break;
    case GF_JN_OBJECT:
        if (c != '{')
            return F_REJECT;
        f.kind = GF_JF_OBJ;
        f.ws_max = (uint8_t)(ws_max < GF_JSM_MAX_WS ? ws_max : GF_JSM_MAX_WS);
        break;
    case GF_JN_ARRAY:
        if (c != '[')
            return F_REJECT;
        f.kind = GF_JF_ARR;
        f.a = node->max_len;
        f.b = node->min_len;
        f.ws_max = (uint8_t)(ws_max < GF_JSM_MAX_WS ? ws_max : GF_JSM_MAX_WS);
        break;
    case GF_JN_LITERAL: {
        uint32_t ch = m->lit[node->lit_root].first_child;
        while (ch != GF_JSM_NONE && m->lit[ch].byte != c)
            ch = m->lit[ch].next_sibling;
        if (ch == GF_JSM_NONE)
            return F_REJECT;
        f.kind = GF_JF_LIT;
        f.a = ch;
        break;
    }
    default:
        return F_REJECT;
    }
    s->f[s->depth++] = f;
    return F_OK;
}

/* A gap: whitespace within the frame's budget. */
static int gap_ws(gf_jframe *f, uint8_t c)
{
    if (!is_ws(c) || f->ws >= f->ws_max)
        return 0;
    f->ws++;
    return 1;
}

static void enter(gf_jframe *f, uint8_t sub)
{
    f->sub = sub;
    f->ws = 0;
}

/* Properties a key may name from index `from`: up to the first required
 * one (properties are written in schema order). */
static uint64_t key_range(const gf_jnode *n, uint32_t from)
{
    if (from >= n->n_props)
        return 0;
    uint64_t all = n->n_props == 64 ? ~0ull : (1ull << n->n_props) - 1;
    uint64_t range = all & (~0ull << from);
    uint64_t req = n->required & range;
    if (req) {
        uint64_t first = req & (0 - req);
        range &= (first << 1) - 1; /* wraps to all ones for bit 63 */
    }
    return range;
}

static int obj_may_close(const gf_jnode *n, uint32_t from)
{
    return n->open || from >= 64 || (n->required & (~0ull << from)) == 0;
}

/* Moves a schema key from trie node b with byte c. */
static int key_step(const gf_jsm *m, const gf_jnode *n, gf_jframe *f, uint8_t c)
{
    uint32_t ch = m->lit[f->b].first_child;
    while (ch != GF_JSM_NONE && m->lit[ch].byte != c)
        ch = m->lit[ch].next_sibling;
    if (ch == GF_JSM_NONE || !(m->lit[ch].below & key_range(n, f->a)))
        return F_REJECT;
    if (m->lit[ch].value != GF_JSM_NONE) { /* the closing quote of a key */
        f->a = m->lit[ch].value + 1;
        f->b = 0;
        enter(f, O_COLON);
        return F_OK;
    }
    f->b = ch;
    f->sub = O_KEY;
    return F_OK;
}

static int obj_step(const gf_jsm *m, gf_jstate *s, gf_jframe *f, uint8_t c)
{
    const gf_jnode *n = &m->nodes[f->node];
    switch (f->sub) {
    case O_OPEN:
    case O_COMMA:
        if (gap_ws(f, c))
            return F_OK;
        if (c == '}' && f->sub == O_OPEN && obj_may_close(n, f->a))
            return F_DONE;
        if (c != '"')
            return F_REJECT;
        if (n->open) {
            f->sub = O_KEYSTR;
            f->ws = 0;
            /* node 0 is the unbounded string (schema.c) */
            return push_value(m, s, 0, c);
        }
        f->b = n->lit_root;
        return key_step(m, n, f, c);
    case O_KEY:
        return key_step(m, n, f, c);
    case O_COLON:
        if (gap_ws(f, c))
            return F_OK;
        if (c != ':')
            return F_REJECT;
        enter(f, O_VALUE);
        return F_OK;
    case O_VALUE:
        if (gap_ws(f, c))
            return F_OK;
        return push_value(m, s, n->open ? m->root_any : m->props[n->first_prop + f->a - 1], c);
    case O_AFTER:
        if (gap_ws(f, c))
            return F_OK;
        if (c == '}' && obj_may_close(n, f->a))
            return F_DONE;
        if (c == ',' && (n->open || key_range(n, f->a))) {
            enter(f, O_COMMA);
            return F_OK;
        }
        return F_REJECT;
    default:
        return F_REJECT;
    }
}

static int arr_step(const gf_jsm *m, gf_jstate *s, gf_jframe *f, uint8_t c)
{
    const gf_jnode *n = &m->nodes[f->node];
    if (gap_ws(f, c))
        return F_OK;
    switch (f->sub) {
    case A_OPEN:
        if (c == ']' && f->b == 0)
            return F_DONE;
        if (f->a == 0)
            return F_REJECT;
        return push_value(m, s, n->items, c);
    case A_COMMA:
        return push_value(m, s, n->items, c);
    case A_AFTER:
        if (c == ']' && f->b == 0)
            return F_DONE;
        if (c == ',' && f->a > 0) {
            enter(f, A_COMMA);
            return F_OK;
        }
        return F_REJECT;
    default:
        return F_REJECT;
    }
}

static int str_step(gf_jframe *f, uint8_t c)
{
    switch (f->sub) {
    case S_NORMAL:
        if (c == '"')
            return f->b == 0 ? F_DONE : F_REJECT;
        if (f->a == 0 || c < 0x20)
            return F_REJECT; /* no room for another character, or a raw control byte */
        if (c == '\\') {
            f->sub = S_ESC;
            return F_OK;
        }
        if (c < 0x80) {
            f->a = dec(f->a);
            f->b = dec(f->b);
            return F_OK;
        }
        {
            uint32_t need, lo = 0x80, hi = 0xBF;
            if (c >= 0xC2 && c <= 0xDF)
                need = 1;
            else if (c >= 0xE0 && c <= 0xEF)
                need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
            else if (c >= 0xF0 && c <= 0xF4)
                need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
            else
                return F_REJECT;
            f->sub = S_UTF8;
            f->x = need | lo << 8 | hi << 16; /* x: the pending character */
            return F_OK;
        }
    case S_UTF8: {
        uint32_t need = (uint32_t)f->x & 0xff, lo = ((uint32_t)f->x >> 8) & 0xff,
                 hi = ((uint32_t)f->x >> 16) & 0xff;
        if (c < lo || c > hi)
            return F_REJECT;
        if (--need == 0) {
            f->sub = S_NORMAL;
            f->x = 0;
            f->a = dec(f->a);
            f->b = dec(f->b);
        } else {
            f->x = need | 0x80u << 8 | 0xBFu << 16;
        }
        return F_OK;
    }
    case S_ESC:
        if (c == 'u') {
            f->sub = S_HEX;
            f->x = 0;
            return F_OK;
        }
        if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
            c == 't') {
            f->sub = S_NORMAL;
            f->a = dec(f->a);
            f->b = dec(f->b);
            return F_OK;
        }
        return F_REJECT;
    case S_HEX: {
        int v = c >= '0' && c <= '9' ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0)
            return F_REJECT;
        uint32_t got = (uint32_t)f->x & 0xf, first_d = ((uint32_t)f->x >> 4) & 1;
        if (got == 1 && first_d && v >= 8)
            return F_REJECT; /* \uD800-\uDFFF: surrogates are not written */
        if (got == 3) {
            f->sub = S_NORMAL;
            f->x = 0;
            f->a = dec(f->a);
            f->b = dec(f->b);
            return F_OK;
        }
        f->x = (got + 1) | (uint32_t)(got == 0 ? v == 13 : first_d) << 4;
        return F_OK;
    }
    default:
        return F_REJECT;
    }
}

static int lit_step(const gf_jsm *m, gf_jframe *f, uint8_t c)
{
    uint32_t ch = m->lit[f->a].first_child;
    while (ch != GF_JSM_NONE && m->lit[ch].byte != c)
        ch = m->lit[ch].next_sibling;
    if (ch != GF_JSM_NONE) {
        f->a = ch;
        return F_OK;
    }
    return m->lit[f->a].value != GF_JSM_NONE ? F_PASS : F_REJECT;
}

static int frame_step(const gf_jsm *m, gf_jstate *s, gf_jframe *f, uint8_t c)
{
    switch (f->kind) {
    case GF_JF_ROOT:
        if (gap_ws(f, c))
            return F_OK;
        if (f->sub == R_START) {
            f->sub = R_AFTER; /* the value's frame goes on top; ws counts afresh after it */
            f->ws = 0;
            return push_value(m, s, f->node, c);
        }
        return F_REJECT;
    case GF_JF_OBJ:
        return obj_step(m, s, f, c);
    case GF_JF_ARR:
        return arr_step(m, s, f, c);
    case GF_JF_STR:
        return str_step(f, c);
    case GF_JF_NUM: {
        const gf_jnode *n = &m->nodes[f->node];
        if (gf_num_step(n, f, c))
            return F_OK;
        return gf_num_complete(n, f) ? F_PASS : F_REJECT;
    }
    case GF_JF_LIT:
        return lit_step(m, f, c);
    default:
        return F_REJECT;
    }
}

/* The frame below a finished child moves past it. */
static void child_done(gf_jframe *p)
{
    switch (p->kind) {
    case GF_JF_OBJ:
        enter(p, p->sub == O_KEYSTR ? O_COLON : O_AFTER);
        break;
    case GF_JF_ARR:
        p->a = dec(p->a);
        p->b = dec(p->b);
        enter(p, A_AFTER);
        break;
    default: /* the root is already in R_AFTER */
        break;
    }
}

void gf_jsm_pop_closed(const gf_jsm *m, gf_jstate *s)
{
    (void)m;
    s->depth--;
    if (s->depth > 0)
        child_done(&s->f[s->depth - 1]);
}

int gf_jsm_step(const gf_jsm *m, gf_jstate *s, uint8_t c)
{
    if (s->finished)
        return GF_STEP_REJECT;
    for (;;) {
        gf_jframe *top = &s->f[s->depth - 1];
        int r = frame_step(m, s, top, c);
        if (r == F_REJECT)
            return GF_STEP_REJECT;
        if (r == F_OK)
            return GF_STEP_OK;
        /* the frame is finished: F_DONE consumed c, F_PASS hands it down */
        if (s->depth - 1 < s->floor || s->depth == 1)
            return r == F_DONE ? GF_STEP_FLOOR : GF_STEP_REJECT;
        gf_jsm_pop_closed(m, s);
        if (r == F_DONE)
            return GF_STEP_OK;
    }
}

int gf_jsm_complete(const gf_jsm *m, const gf_jstate *s)
{
    if (s->finished)
        return 1;
    const gf_jframe *root = &s->f[0];
    if (root->sub != R_AFTER)
        return 0;
    if (s->depth == 1)
        return 1;
    if (s->depth != 2)
        return 0;
    const gf_jframe *v = &s->f[1];
    if (v->kind == GF_JF_NUM)
        return gf_num_complete(&m->nodes[v->node], v);
    if (v->kind == GF_JF_LIT)
        return m->lit[v->a].value != GF_JSM_NONE;
    return 0;
}

static uint32_t clamp_u32(uint32_t v, uint32_t c) { return v > c ? c : v; }

int gf_jsm_cache_frame(const gf_jframe *f, uint32_t clamp, uint32_t depth, gf_jframe *key)
{
    if (f->kind == GF_JF_NUM || f->kind == GF_JF_LIT)
        return 0;
    *key = *f;
    if (f->kind != GF_JF_STR)
        key->y = depth;
    else
        key->node = 0; /* a string's node matters only through its counts */
    if (f->kind == GF_JF_STR || f->kind == GF_JF_ARR) {
        key->a = clamp_u32(f->a, clamp);
        key->b = clamp_u32(f->b, clamp);
    }
    return 1;
}

int gf_jsm_str_between(const gf_jframe *f) { return f->kind == GF_JF_STR && f->sub == S_NORMAL; }

uint32_t gf_jsm_str_started(const gf_jframe *f, uint32_t a0)
{
    return a0 - f->a + (f->sub != S_NORMAL);
}
