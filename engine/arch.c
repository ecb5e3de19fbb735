/* Parsing and printing of topology strings ("C64-MP2-FC2048"). */
#include "engine/arch.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "engine/err.h"

/* Parses the digits p[0..len) into *out, saturating at ARCH_MAX_WIDTH + 1 so
   that any over-wide number reaches the range check. 0 if not all digits. */
static int arch_parse_number(const char *p, size_t len, int *out) {
    if (len == 0) return 0;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)p[i])) return 0;
        v = v * 10 + (p[i] - '0');
        if (v > ARCH_MAX_WIDTH) v = ARCH_MAX_WIDTH + 1;
    }
    *out = v;
    return 1;
}

int arch_parse(arch *a, const char *s) {
    memset(a, 0, sizeof *a);
    if (!s) return bn_error(BN_EARG, "topology: missing string");
    if (*s == '\0') return BN_OK; /* no hidden layers: classifier only */
    const char *p = s;
    int seen_fc = 0;
    while (*p) {
        const char *end = strchr(p, '-');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        arch_item it = {0};
        int num = 0;
        if (len >= 2 && p[0] == 'F' && p[1] == 'C' && arch_parse_number(p + 2, len - 2, &num)) {
            it.kind = ARCH_FC;
        } else if (len >= 2 && p[0] == 'M' && p[1] == 'P' && arch_parse_number(p + 2, len - 2, &num)) {
            it.kind = ARCH_POOL;
        } else if (len >= 1 && p[0] == 'C' && arch_parse_number(p + 1, len - 1, &num)) {
            it.kind = ARCH_CONV;
        } else {
            return bn_error(BN_EARG, "topology \"%s\": bad item \"%.*s\" (expected Cn, MP2 or FCn)",
                            s, (int)len, p);
        }
        it.size = num;
        if (it.kind == ARCH_POOL && num != 2)
            return bn_error(BN_EARG, "topology \"%s\": only MP2 pooling is supported, got \"%.*s\"",
                            s, (int)len, p);
        if (it.kind != ARCH_POOL && (num < 1 || num > ARCH_MAX_WIDTH)) {
            size_t skip = it.kind == ARCH_FC ? 2 : 1; /* the number as written */
            return bn_error(BN_EARG, "topology \"%s\": %s %.*s out of range 1..%d", s,
                            it.kind == ARCH_FC ? "width" : "channels", (int)(len - skip), p + skip,
                            ARCH_MAX_WIDTH);
        }
        if (it.kind == ARCH_FC) seen_fc = 1;
        if (it.kind != ARCH_FC && seen_fc)
            return bn_error(BN_EARG, "topology \"%s\": \"%.*s\" after a dense layer", s, (int)len, p);
        if (it.kind == ARCH_POOL && (a->n == 0 || a->items[a->n - 1].kind != ARCH_CONV))
            return bn_error(BN_EARG, "topology \"%s\": MP2 must follow a convolution", s);
        if (a->n >= ARCH_MAX_ITEMS - 1)
            return bn_error(BN_EARG, "topology \"%s\": more than %d items", s, ARCH_MAX_ITEMS - 1);
        a->items[a->n++] = it;
        if (!end) break;
        p = end + 1;
        if (*p == '\0') return bn_error(BN_EARG, "topology \"%s\": trailing '-'", s);
    }
    return BN_OK;
}

void arch_format(const arch *a, char *buf, size_t n) {
    size_t used = 0;
    if (n == 0) return;
    buf[0] = '\0';
    for (int i = 0; i < a->n; i++) {
        const arch_item *it = &a->items[i];
        const char *pre = it->kind == ARCH_FC ? "FC" : it->kind == ARCH_POOL ? "MP" : "C";
        int w = snprintf(buf + used, n - used, "%s%s%d", i ? "-" : "", pre, it->size);
        if (w < 0 || (size_t)w >= n - used) return;
        used += (size_t)w;
    }
}
