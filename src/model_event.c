/*
 * model_event.c - every session in the server's epoll loop, non-blocking,
 * up to max_connections at once.  No thread or process per client: an idle
 * session costs a struct conn and its socket, no buffers.
 */
#include "model.h"
#include "server.h"

static int
event_stream(struct server *srv, struct conn *c)
{
	return server_watch(srv, c);
}

static int
event_dgram(struct server *srv, struct conn *c)
{
	server_answer_dgram(srv, c);
	return 0;
}

const struct model_ops model_event = {
	.id = MODEL_EVENT,
	.in_loop = true,
	.stream = event_stream,
	.dgram = event_dgram,
};

const struct model_ops *
model_get(enum model m)
{
	switch (m) {
	case MODEL_SEQUENTIAL:	return &model_sequential;
	case MODEL_FORK:	return &model_fork;
	case MODEL_THREAD:	return &model_thread;
	case MODEL_EVENT:	return &model_event;
	}
	return &model_thread;
}
