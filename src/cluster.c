/*
 * The answer to a join in a cluster (sb_cluster.h).
 */
#include "sb_cluster.h"

#include <stdlib.h>

void sb_join_answer_free(struct sb_join_answer *a)
{
	if (!a)
		return;
	free(a->owned);
	free(a);
}

struct sb_join_answer *sb_join_answer_refused(enum sb_err err)
{
	struct sb_join_answer *a = calloc(1, sizeof(*a));

	if (a)
		a->err = err;
	return a;
}
