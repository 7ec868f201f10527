/*  =========================================================================
    shares - who holds how much of the memory budget, and who may take more

    Two hashes, function id -> MB and owner id -> MB, kept by the owner of
    the budget as environments come and go. Invariant: each entry is the sum
    of the memory added for it and is never zero or negative (a release
    beyond what was added is an owner bug: logged, the entry dropped).

    Why shares are not hard limits: a lone function may use the whole budget
    (a laptop with one busy function should not idle half its memory), so
    the broker asks shares_entitled only when memory is short and someone
    waits: entitled calls are served first, and an environment whose tenant
    is over its share gives its memory back when its run ends instead of
    taking its own function's next call (actors/assignment.c). Running calls
    are never killed for a share.
    ========================================================================= */

#include "broker/shares.h"

struct _shares_t {
    zhashx_t *functions;            //  function id -> long * MB held
    zhashx_t *owners;               //  owner id -> long * MB held
    long function_share_mb;         //  Most one function holds while others wait
    long owner_share_mb;            //  Most one owner holds while others wait
};

shares_t *
shares_new (long budget_mb, long function_percent, long owner_percent)
{
    shares_t *self = (shares_t *) zmalloc (sizeof (shares_t));
    self->functions = zhashx_new ();
    zhashx_set_destructor (self->functions, (zhashx_destructor_fn *) zstr_free);
    self->owners = zhashx_new ();
    zhashx_set_destructor (self->owners, (zhashx_destructor_fn *) zstr_free);
    self->function_share_mb = budget_mb * function_percent / 100;
    self->owner_share_mb = budget_mb * owner_percent / 100;
    return self;
}

void
shares_set_budget (shares_t *self, long budget_mb, long function_percent, long owner_percent)
{
    self->function_share_mb = budget_mb * function_percent / 100;
    self->owner_share_mb = budget_mb * owner_percent / 100;
}

void
shares_destroy (shares_t **self_p)
{
    if (self_p && *self_p) {
        shares_t *self = *self_p;
        zhashx_destroy (&self->functions);
        zhashx_destroy (&self->owners);
        free (self);
        *self_p = NULL;
    }
}

static void
s_add (zhashx_t *table, const char *id, long memory_mb)
{
    long *held = (long *) zhashx_lookup (table, id);
    if (!held) {
        held = (long *) zmalloc (sizeof (long));
        zhashx_insert (table, id, held);
    }
    *held += memory_mb;
    if (*held < 0)
        zsys_error ("shares: '%s' released more memory than it held", id);
    if (*held <= 0)
        zhashx_delete (table, id);
}

static long
s_held (zhashx_t *table, const char *id)
{
    long *held = (long *) zhashx_lookup (table, id);
    return held ? *held : 0;
}

void
shares_add (shares_t *self, const char *function_id, const char *owner_id, long memory_mb)
{
    s_add (self->functions, function_id, memory_mb);
    s_add (self->owners, owner_id, memory_mb);
}

long
shares_function_mb (shares_t *self, const char *function_id)
{
    return s_held (self->functions, function_id);
}

long
shares_owner_mb (shares_t *self, const char *owner_id)
{
    return s_held (self->owners, owner_id);
}

long
shares_function_share_mb (shares_t *self)
{
    return self->function_share_mb;
}

long
shares_owner_share_mb (shares_t *self)
{
    return self->owner_share_mb;
}

bool
shares_entitled (shares_t *self, const char *function_id, const char *owner_id, long memory_mb)
{
    long function_mb = s_held (self->functions, function_id);
    long owner_mb = s_held (self->owners, owner_id);
    return (function_mb == 0 || function_mb + memory_mb <= self->function_share_mb)
        && (owner_mb == 0 || owner_mb + memory_mb <= self->owner_share_mb);
}

bool
shares_over (shares_t *self, const char *function_id, const char *owner_id)
{
    return s_held (self->functions, function_id) > self->function_share_mb
        || s_held (self->owners, owner_id) > self->owner_share_mb;
}

bool
shares_owner_over (shares_t *self, const char *owner_id)
{
    return s_held (self->owners, owner_id) > self->owner_share_mb;
}

//  --------------------------------------------------------------------------
//  Selftest

void
shares_test (bool verbose)
{
    printf ("shares: ");
    shares_t *shares = shares_new (4096, 50, 75);
    assert (shares_function_share_mb (shares) == 2048 && shares_owner_share_mb (shares) == 3072);

    //  Nothing held: anyone may take one environment, even one beyond a share
    assert (shares_entitled (shares, "f1", "alice", 128));
    assert (shares_entitled (shares, "f1", "alice", 4096));
    assert (!shares_over (shares, "f1", "alice"));

    //  The function share: 2048 of 4096
    shares_add (shares, "f1", "alice", 2048);
    assert (shares_function_mb (shares, "f1") == 2048 && shares_owner_mb (shares, "alice") == 2048);
    assert (!shares_entitled (shares, "f1", "alice", 128));
    assert (!shares_over (shares, "f1", "alice"));          //  At its share, not over it
    shares_add (shares, "f1", "alice", 2048);
    assert (shares_over (shares, "f1", "alice") && shares_owner_over (shares, "alice"));

    //  Another function of the same owner: its own share is free, its
    //  owner's is not (4096 > 3072); another owner's function may take one
    assert (!shares_entitled (shares, "f2", "alice", 128));
    assert (shares_entitled (shares, "f3", "bob", 1024));
    shares_add (shares, "f1", "alice", -2048);
    assert (shares_entitled (shares, "f2", "alice", 1024));
    assert (!shares_entitled (shares, "f2", "alice", 1025));
    shares_add (shares, "f2", "alice", 1024);
    assert (!shares_over (shares, "f2", "alice") && shares_owner_mb (shares, "alice") == 3072);

    //  Releases forget what falls to zero; a release beyond is clamped
    shares_add (shares, "f1", "alice", -2048);
    shares_add (shares, "f2", "alice", -1024);
    assert (shares_function_mb (shares, "f1") == 0 && shares_owner_mb (shares, "alice") == 0);
    shares_add (shares, "f9", "zed", -5);                   //  Owner bug: logged, nothing kept
    assert (shares_function_mb (shares, "f9") == 0 && shares_owner_mb (shares, "zed") == 0);

    shares_destroy (&shares);
    shares_destroy (&shares);
    printf ("OK\n");
}
