/*
 * test_server_api.c - pio serve's OpenAI serialization (src/server/api.c,
 * compiled in here): generated text with <think> and a Qwen3 <tool_call>,
 * split across events at awkward places, must come out as reasoning_content,
 * content and tool_calls, streamed as SSE deltas and as one JSON body, with
 * finish_reason "tool_calls". (The fixture models are random and never emit
 * a tool call, so the end-to-end test in tests/server cannot show this.)
 */
#include "check.h"

#include "../src/server/api.c"

static const char *TOOLS = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                           "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]";

static const char *PIECES[] = {
    "<thi", "nk>\nI should call", " the tool.\n</th", "ink>\n\nLet me check.\n<tool_",
    "call>\n{\"name\": \"get_weather\", ", "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
};

static srv_request *make_request(pio_server *s, bool stream)
{
    srv_request *r = calloc(1, sizeof *r);
    pio_output_parse_params pp;
    pthread_cond_init(&r->cv, NULL);
    r->refs = 1;
    r->kind = SRV_KIND_CHAT;
    r->n = 1;
    r->stream = stream;
    r->include_usage = true;
    r->model_name = s->model_name;
    r->usage_prompt = 7;
    r->usage_completion = 20;
    snprintf(r->id_str, sizeof r->id_str, "chatcmpl-test");
    r->choices = calloc(1, sizeof *r->choices);
    pio_output_parse_params_default(&pp);
    pp.format = PIO_TOOL_FORMAT_QWEN3_JSON;
    pp.tools_json = TOOLS;
    pp.id_prefix = "call_t_";
    CHECK_OK(pio_output_parser_new(&pp, &r->choices[0].parser));
    return r;
}

/* The events of PIECES, then the end (STOP), as the inference thread sends them. */
static srv_event *make_events(void)
{
    srv_event *head = NULL, **tail = &head;
    size_t i;
    for (i = 0; i <= sizeof PIECES / sizeof PIECES[0]; i++) {
        srv_event *ev = calloc(1, sizeof *ev);
        if (i < sizeof PIECES / sizeof PIECES[0]) {
            ev->text = strdup(PIECES[i]);
            ev->len = strlen(PIECES[i]);
        } else {
            ev->finish = SRV_FINISH_STOP;
        }
        *tail = ev;
        tail = &ev->next;
    }
    return head;
}

static void check_stream(pio_server *s)
{
    srv_request *r = make_request(s, true);
    char *p, *save = NULL, content[256] = "", reasoning[256] = "", args[256] = "", name[64] = "", id[64] = "";
    const char *finish = NULL;
    bool done = false, usage = false, role = false;

    srv_serialize_events(s, r, make_events());
    srv_serialize_final(s, r);
    CHECK(r->out && strstr(r->out, "data: [DONE]\n\n"), "no [DONE]");
    for (p = strtok_r(r->out, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
        cJSON *o, *ch, *d, *tc;
        CHECK(!strncmp(p, "data: ", 6), "line %s", p);
        if (!strcmp(p, "data: [DONE]")) {
            done = true;
            continue;
        }
        o = cJSON_Parse(p + 6);
        CHECK(o != NULL, "chunk is not JSON: %s", p);
        if (!o)
            continue;
        CHECK(!strcmp(cJSON_GetObjectItem(o, "object")->valuestring, "chat.completion.chunk"), "object");
        if (cJSON_GetObjectItem(o, "usage")) {
            usage = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "usage"), "total_tokens")->valueint == 27;
            cJSON_Delete(o);
            continue;
        }
        ch = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0);
        d = cJSON_GetObjectItem(ch, "delta");
        if (cJSON_IsString(cJSON_GetObjectItem(d, "role")))
            role = true;
        if (cJSON_IsString(cJSON_GetObjectItem(d, "content")))
            strncat(content, cJSON_GetObjectItem(d, "content")->valuestring, sizeof content - strlen(content) - 1);
        if (cJSON_IsString(cJSON_GetObjectItem(d, "reasoning_content")))
            strncat(reasoning, cJSON_GetObjectItem(d, "reasoning_content")->valuestring,
                    sizeof reasoning - strlen(reasoning) - 1);
        cJSON_ArrayForEach(tc, cJSON_GetObjectItem(d, "tool_calls")) {
            cJSON *fn = cJSON_GetObjectItem(tc, "function");
            CHECK(cJSON_GetObjectItem(tc, "index")->valueint == 0, "tool call index");
            if (cJSON_IsString(cJSON_GetObjectItem(tc, "id")))
                snprintf(id, sizeof id, "%s", cJSON_GetObjectItem(tc, "id")->valuestring);
            if (cJSON_IsString(cJSON_GetObjectItem(fn, "name")))
                snprintf(name, sizeof name, "%s", cJSON_GetObjectItem(fn, "name")->valuestring);
            if (cJSON_IsString(cJSON_GetObjectItem(fn, "arguments")))
                strncat(args, cJSON_GetObjectItem(fn, "arguments")->valuestring, sizeof args - strlen(args) - 1);
        }
        if (cJSON_IsString(cJSON_GetObjectItem(ch, "finish_reason")))
            finish = strcmp(cJSON_GetObjectItem(ch, "finish_reason")->valuestring, "tool_calls") ? "other"
                                                                                                : "tool_calls";
        cJSON_Delete(o);
    }
    CHECK(role && done && usage, "role %d done %d usage %d", role, done, usage);
    CHECK(!strcmp(reasoning, "I should call the tool."), "reasoning '%s'", reasoning);
    CHECK(!strcmp(content, "Let me check."), "content '%s'", content);
    CHECK(!strcmp(name, "get_weather") && !strncmp(id, "call_t_", 7), "name '%s' id '%s'", name, id);
    CHECK(!strcmp(args, "{\"city\":\"Paris\"}"), "arguments '%s'", args);
    CHECK(finish && !strcmp(finish, "tool_calls"), "finish %s", finish ? finish : "(none)");
    request_free(r);
}

static void check_body(pio_server *s)
{
    srv_request *r = make_request(s, false);
    cJSON *o, *msg, *tc;
    srv_serialize_events(s, r, make_events());
    srv_serialize_final(s, r);
    o = cJSON_Parse(r->out);
    CHECK(o != NULL, "body is not JSON: %s", r->out ? r->out : "(null)");
    msg = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0), "message");
    CHECK(!strcmp(cJSON_GetObjectItem(msg, "content")->valuestring, "Let me check."), "content");
    CHECK(!strcmp(cJSON_GetObjectItem(msg, "reasoning_content")->valuestring, "I should call the tool."),
          "reasoning");
    tc = cJSON_GetArrayItem(cJSON_GetObjectItem(msg, "tool_calls"), 0);
    CHECK(tc && !strcmp(cJSON_GetObjectItem(tc, "type")->valuestring, "function"), "type");
    CHECK(tc && !strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(tc, "function"), "name")->valuestring,
                        "get_weather"), "name");
    CHECK(tc && !strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(tc, "function"), "arguments")->valuestring,
                        "{\"city\":\"Paris\"}"), "arguments");
    CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0),
                                      "finish_reason")->valuestring, "tool_calls"), "finish_reason");
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "usage"), "prompt_tokens")->valueint == 7, "usage");
    cJSON_Delete(o);
    request_free(r);
}

static void check_error_json(void)
{
    srv_error e;
    char *json;
    cJSON *o, *err;
    memset(&e, 0, sizeof e);
    e.status = 400;
    e.type = "invalid_request_error";
    e.param = "temperature";
    snprintf(e.message, sizeof e.message, "bad \"value\"");
    json = srv_error_json(&e);
    o = cJSON_Parse(json);
    err = cJSON_GetObjectItem(o, "error");
    CHECK(err && !strcmp(cJSON_GetObjectItem(err, "message")->valuestring, "bad \"value\""), "message");
    CHECK(err && !strcmp(cJSON_GetObjectItem(err, "param")->valuestring, "temperature"), "param");
    CHECK(err && cJSON_IsNull(cJSON_GetObjectItem(err, "code")), "code null");
    cJSON_Delete(o);
    free(json);
}

int main(void)
{
    pio_server s;
    memset(&s, 0, sizeof s);
    snprintf(s.model_name, sizeof s.model_name, "test-model");
    pthread_mutex_init(&s.mu, NULL);
    check_stream(&s);
    check_body(&s);
    check_error_json();
    pthread_mutex_destroy(&s.mu);
    return check_report("test_server_api");
}
