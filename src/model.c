/*
 * model.c - the registry of concurrency models.
 */
#include "model.h"

typedef void	hook_fn(const struct model_env *env);

static const struct model_ops *const all[] = {
	&model_sequential, &model_fork, &model_thread, &model_event
};
#define NMODELS	(sizeof(all) / sizeof(all[0]))

const struct model_ops *
model_get(enum model m)
{
	size_t i;

	for (i = 0; i < NMODELS; i++)
		if (all[i]->id == m)
			return all[i];
	return &model_thread;
}

int
model_init(const struct model_env *env)
{
	size_t i;
	int r;

	for (i = 0; i < NMODELS; i++)
		if (all[i]->init && (r = all[i]->init(env)) < 0)
			return r;
	return 0;
}

/* Call the hook at offset off of every model that has one. */
static void
each(size_t off, const struct model_env *env)
{
	hook_fn *hook;
	size_t i;

	for (i = 0; i < NMODELS; i++) {
		hook = *(hook_fn *const *)(const void *)((const char *)all[i] +
		    off);
		if (hook)
			hook(env);
	}
}

void
model_reap(const struct model_env *env)
{
	each(offsetof(struct model_ops, reap), env);
}

void
model_stop(const struct model_env *env)
{
	each(offsetof(struct model_ops, stop), env);
}

void
model_kill(const struct model_env *env)
{
	each(offsetof(struct model_ops, kill), env);
}

void
model_fini(const struct model_env *env)
{
	each(offsetof(struct model_ops, fini), env);
}

void
model_child_fds(struct fdlist *l)
{
	size_t i;

	for (i = 0; i < NMODELS; i++)
		if (all[i]->child_fds)
			all[i]->child_fds(l);
}

void
model_child_cleanup(void)
{
	size_t i;

	for (i = 0; i < NMODELS; i++)
		if (all[i]->child_cleanup)
			all[i]->child_cleanup();
}
