/*  =========================================================================
    shares - who holds how much of the memory budget, and who may take more

    The worker broker (actors/assignment.c) gives environments memory from
    one budget (--memory-budget-mb). Left alone, one function with big
    environments takes all of it and every other function's calls fail. A
    share bounds what one tenant may hold while another tenant is waiting:
    a function at most --function-share percent of the budget, and all the
    functions of one owner (user) at most --owner-share percent. This class
    is the bookkeeping: memory held per function and per owner, and the two
    questions the broker asks. It sends nothing and owns no environments.

        shares_t *shares = shares_new (4096, 50, 75);
        shares_add (shares, "f1", "alice", 2048);      //  an environment made
        shares_entitled (shares, "f1", "alice", 2048); //  false: f1 would hold 4096 > 2048
        shares_over (shares, "f1", "alice");           //  false: 2048 is within
        shares_add (shares, "f1", "alice", -2048);     //  it ended
    ========================================================================= */

#ifndef CLOWDY_SHARES_H_INCLUDED
#define CLOWDY_SHARES_H_INCLUDED

#include <czmq.h>

typedef struct _shares_t shares_t;

//  Shares of budget_mb: function_percent for one function, owner_percent
//  for one owner (1..100 each).
shares_t *
    shares_new (long budget_mb, long function_percent, long owner_percent);

//  Safe on NULL and twice.
//  The budget changed (a worker joined or left): the shares follow it.
void
    shares_set_budget (shares_t *self, long budget_mb, long function_percent, long owner_percent);

void
    shares_destroy (shares_t **self_p);

//  An environment of memory_mb (negative: one that ended) for this function
//  and owner. Entries that fall to zero are forgotten.
void
    shares_add (shares_t *self, const char *function_id, const char *owner_id, long memory_mb);

//  Memory held now.
long
    shares_function_mb (shares_t *self, const char *function_id);
long
    shares_owner_mb (shares_t *self, const char *owner_id);

//  The shares, in MB.
long
    shares_function_share_mb (shares_t *self);
long
    shares_owner_share_mb (shares_t *self);

//  May the function take one more environment of memory_mb and stay within
//  its share and its owner's? A function (or owner) that holds nothing may
//  always take one, however big: a share never locks a tenant out.
bool
    shares_entitled (shares_t *self, const char *function_id, const char *owner_id, long memory_mb);

//  Does the function hold more than its share, or its owner more than its?
bool
    shares_over (shares_t *self, const char *function_id, const char *owner_id);

//  Does the owner hold more than its share?
bool
    shares_owner_over (shares_t *self, const char *owner_id);

void
    shares_test (bool verbose);

#endif
