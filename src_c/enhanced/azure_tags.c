/* azure_tags.c - Azure App Service facts from the environment and the enhanced metrics' tags.
 * In: WEBSITE_*, COMPUTERNAME, REGION_NAME, DD_* variables, read once at start on the caller's
 * thread (never on the loop thread, which would race with a host's setenv). Out: strings.
 * The Rust binary reads the App Service variables from /proc/self/environ (the environment at
 * exec); an embedded library reads the live environment, which is what its host set. */
#include "enhanced/azure_tags.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The variable, trimmed, into out; "" when unset, blank or longer than cap allows. */
static const char *env_trimmed(const char *name, char *out, size_t cap) {
    out[0] = '\0';
    const char *v = getenv(name);
    if (!v) return out;
    while (isspace((unsigned char)*v)) v++;
    size_t n = strlen(v);
    while (n > 0 && isspace((unsigned char)v[n - 1])) n--;
    if (n >= cap) return out;
    memcpy(out, v, n);
    out[n] = '\0';
    return out;
}

bool dds__azure_owner_resource_group(const char *owner, char *out, size_t cap) {
    if (!owner) return false;
    static const char ws[] = "webspace";
    const size_t wlen = sizeof(ws) - 1;
    size_t len = strlen(owner);
    /* `.+\+` is greedy: the last '+' (not the first byte) whose remainder matches, then earlier
     * ones. In the remainder `(.+)-.+webspace` is greedy too: the group ends at the last '-' that
     * has at least one byte and then "webspace" after it. */
    for (size_t plus = len; plus-- > 1;) {
        if (owner[plus] != '+') continue;
        const char *r = owner + plus + 1;
        size_t rlen = len - plus - 1;
        size_t w = SIZE_MAX;
        for (size_t i = 0; i + wlen <= rlen; i++)
            if (memcmp(r + i, ws, wlen) == 0) w = i;
        if (w == SIZE_MAX || w < 3) continue;
        for (size_t d = w - 2; d >= 1; d--) {
            if (r[d] != '-') continue;
            if (d >= cap) return false;
            memcpy(out, r, d);
            out[d] = '\0';
            return true;
        }
    }
    return false;
}

void dds__azure_resource_group(char *out, size_t cap) {
    char sku[64];
    if (env_trimmed("DD_AZURE_RESOURCE_GROUP", out, cap)[0]) return;
    if (env_trimmed("WEBSITE_RESOURCE_GROUP", out, cap)[0]) return;
    if (strcmp(env_trimmed("WEBSITE_SKU", sku, sizeof(sku)), "FlexConsumption") == 0) return;
    char owner[DDS__AZURE_VALUE_MAX * 2];
    env_trimmed("WEBSITE_OWNER_NAME", owner, sizeof(owner));
    if (!dds__azure_owner_resource_group(owner, out, cap)) out[0] = '\0';
}

bool dds__azure_instance_name(char *out, size_t cap) {
    static const char *const vars[] = {"COMPUTERNAME", "WEBSITE_POD_NAME", "CONTAINER_NAME"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(*vars); i++) {
        if (!env_trimmed(vars[i], out, cap)[0]) continue;
        for (char *p = out; *p; p++) *p = (char)tolower((unsigned char)*p);
        return true;
    }
    return false;
}

typedef struct tagbuf {
    char *out, *skipped;
    size_t cap, skipped_cap, len, skipped_len, n;
} tagbuf;

static void note_skipped(tagbuf *b, const char *key) {
    int w = snprintf(b->skipped + b->skipped_len, b->skipped_cap - b->skipped_len, "%s%s",
                     b->skipped_len ? "," : "", key);
    if (w > 0 && (size_t)w < b->skipped_cap - b->skipped_len) b->skipped_len += (size_t)w;
}

/* Datadog's tag rules as the Rust binary checks them (Tag::new): not ending with ':'. A ','
 * would split the tag in a comma-joined list, and a control byte has no place in a tag. */
static bool value_ok(const char *v) {
    size_t n = strlen(v);
    if (n == 0 || v[n - 1] == ':') return false;
    for (const char *p = v; *p; p++)
        if (*p == ',' || (unsigned char)*p < 0x20 || *p == 0x7f) return false;
    return true;
}

static void add(tagbuf *b, const char *key, const char *value) {
    if (!value[0] || strcmp(value, "unknown") == 0) return;
    if (!value_ok(value)) {
        note_skipped(b, key);
        return;
    }
    int w = snprintf(b->out + b->len, b->cap - b->len, "%s%s:%s", b->n ? "," : "", key, value);
    if (w < 0 || (size_t)w >= b->cap - b->len) {
        b->out[b->len] = '\0';
        note_skipped(b, key);
        return;
    }
    b->len += (size_t)w;
    b->n++;
}

/* The subscription: WEBSITE_OWNER_NAME (trimmed) up to the first '+'; "" when that is blank. */
static void subscription_id(char *out, size_t cap) {
    env_trimmed("WEBSITE_OWNER_NAME", out, cap);
    char *plus = strchr(out, '+');
    if (plus) *plus = '\0';
    const char *p = out;
    while (isspace((unsigned char)*p)) p++;
    if (!*p) out[0] = '\0';
}

static void aas_set(dds__cloud *c, const char *key, const char *value) {
    dds__cloud_tag *t = &c->aas[c->naas++];
    t->key = key;
    snprintf(t->value, sizeof(t->value), "%s", value && value[0] ? value : "unknown");
}

void dds__azure_function_span_tags(dds__cloud *c) {
    char v[DDS__AZURE_VALUE_MAX], sub[DDS__AZURE_VALUE_MAX], rg[DDS__AZURE_VALUE_MAX], site[DDS__AZURE_VALUE_MAX];
    c->naas = 0;
    aas_set(c, "aas.environment.instance_id", env_trimmed("WEBSITE_INSTANCE_ID", v, sizeof(v)));
    aas_set(c, "aas.environment.instance_name", env_trimmed("COMPUTERNAME", v, sizeof(v)));
    aas_set(c, "aas.environment.os", env_trimmed("WEBSITE_OS", v, sizeof(v))[0] ? v : "linux");
    aas_set(c, "aas.environment.runtime", env_trimmed("FUNCTIONS_WORKER_RUNTIME", v, sizeof(v)));
    aas_set(c, "aas.environment.runtime_version", env_trimmed("FUNCTIONS_WORKER_RUNTIME_VERSION", v, sizeof(v)));
    aas_set(c, "aas.environment.function_runtime", env_trimmed("FUNCTIONS_EXTENSION_VERSION", v, sizeof(v)));
    dds__azure_resource_group(rg, sizeof(rg));
    aas_set(c, "aas.resource.group", rg);
    subscription_id(sub, sizeof(sub));
    env_trimmed("WEBSITE_SITE_NAME", site, sizeof(site));
    /* Each part is below DDS__AZURE_VALUE_MAX: the id always fits here; one too long for a tag
     * value is left "unknown" rather than cut. */
    char id[3 * DDS__AZURE_VALUE_MAX + 64] = "";
    if (sub[0] && rg[0] && site[0]) {
        int n = snprintf(id, sizeof(id), "/subscriptions/%s/resourcegroups/%s/providers/microsoft.web/sites/%s", sub,
                         rg, site);
        if (n < 0 || n >= DDS__CLOUD_AAS_VALUE_MAX) id[0] = '\0';
        for (char *p = id; *p; p++) *p = (char)tolower((unsigned char)*p);
    }
    aas_set(c, "aas.resource.id", id);
    aas_set(c, "aas.site.kind", "functionapp");
    aas_set(c, "aas.site.name", site);
    aas_set(c, "aas.site.type", "function");
    aas_set(c, "aas.subscription.id", sub);
}

size_t dds__azure_enhanced_tags(char *out, size_t cap, char *skipped, size_t skipped_cap) {
    tagbuf b = {.out = out, .skipped = skipped, .cap = cap, .skipped_cap = skipped_cap};
    out[0] = '\0';
    if (skipped_cap) skipped[0] = '\0';
    char v[DDS__AZURE_VALUE_MAX];

    dds__azure_resource_group(v, sizeof(v));
    add(&b, "resource_group", v);
    subscription_id(v, sizeof(v));
    add(&b, "subscription_id", v);
    add(&b, "name", env_trimmed("WEBSITE_SITE_NAME", v, sizeof(v)));

    /* service, env and version are every metric's base tags already, from the configuration
     * (DD_SERVICE, DD_ENV, DD_VERSION, or what a binding passed): reading the variables here
     * again could only disagree with it. */
    static const struct { const char *tag, *var; } plain[] = {
        {"region", "REGION_NAME"},
        {"plan_tier", "WEBSITE_SKU"},
        {"serverless_compat_version", "DD_SERVERLESS_COMPAT_VERSION"},
    };
    for (size_t i = 0; i < sizeof(plain) / sizeof(*plain); i++) {
        const char *raw = getenv(plain[i].var);
        if (!raw || !raw[0]) continue;
        if (strlen(raw) >= sizeof(v)) {
            note_skipped(&b, plain[i].tag);
            continue;
        }
        add(&b, plain[i].tag, raw);
    }
    return b.n;
}
