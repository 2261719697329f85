"""Batches and big groups (issue 7, item 4): ``add_members`` of 300 members, creating a group
with all its members in one call (the import path) and destroying it, at 200, 2,000 and 6,000
members.

    python -m bench.groups [--url redis://127.0.0.1:6379/14] [--smoke]

Each repetition creates the group (timed), adds 300 new members to it (timed), removes them
again (not timed) and destroys it at its starting size (timed), so every repetition sees the
same sizes.
"""

from __future__ import annotations

import time

from bench.common import Figure, cli, client, enroll, keys_of, percentile
from limiter import Limiter, Settings, SyncStore

APP = "bench-groups"
BATCH = 300
SIZES = (200, 2_000, 6_000)
STEPS = ("create_group (import)", "add_members (300)", "destroy_group")


def engine(url: str) -> Limiter:
    """A pro app whose group sizes are unlimited (an app override), so that every size can be
    built and 300 more always fit; groups_per_user keeps its pro limit and is checked."""
    made = Limiter(
        SyncStore(client(url)), settings=Settings(redis_url=url, cache_seconds=1.0, policies={})
    )
    made.set_edition(APP, "pro", purchased_on=made.now().date())
    made.set_override(APP, "group_members", None)
    # accounts first: every member is a registered account
    people = [f"user-{n:07d}" for n in range(max(SIZES))] + [f"extra-{n:07d}" for n in range(BATCH)]
    enroll(made.store.client, keys_of(made, APP), people)
    return made


def repetition(limiter: Limiter, size: int, group: str) -> tuple[float, float, float]:
    """Seconds taken by the three timed steps on a group of ``size`` members."""
    members = [f"user-{n:07d}" for n in range(1, size)]
    extra = [f"extra-{n:07d}" for n in range(BATCH)]
    started = time.perf_counter()
    created = limiter.create_group(APP, group, "Public", owner="user-0000000", members=members)
    created_in = time.perf_counter() - started
    assert created.members == size
    started = time.perf_counter()
    added = limiter.add_members(APP, group, extra)
    added_in = time.perf_counter() - started
    assert added.size == size + BATCH
    limiter.remove_members(APP, group, extra)
    started = time.perf_counter()
    destroyed = limiter.destroy_group(APP, group)
    destroyed_in = time.perf_counter() - started
    assert destroyed.members_released == size
    return created_in, added_in, destroyed_in


def run(url: str, smoke: bool) -> Figure:
    sizes, repetitions = ((200, 2_000), 3) if smoke else (SIZES, 30)
    figure = Figure(
        "groups",
        "Big groups: a 300-member batch, creating and destroying a group",
        ["members", "step", "p50 (ms)", "p99 (ms)", "us per member (p50)"],
    )
    limiter = engine(url)
    per_member: dict[str, dict[int, float]] = {step: {} for step in STEPS}
    for size in sizes:
        samples = [repetition(limiter, size, f"g{size}-{n}") for n in range(repetitions)]
        for index, step in enumerate(STEPS):
            seconds = [sample[index] for sample in samples]
            p50 = percentile(seconds, 0.50)
            moved = BATCH if index == 1 else size
            per_member[step][size] = p50 / moved * 1e6
            row = [size, step, p50 * 1e3, percentile(seconds, 0.99) * 1e3, p50 / moved * 1e6]
            figure.rows.append(row)
    limiter.close()
    client(url).close()  # leave the database empty
    smallest, largest = sizes[0], sizes[-1]
    figure.notes += [
        f"{repetitions} repetitions per size (of {repetitions} samples, p99 is about the "
        "slowest); one blocking client, the engine's default settings.",
        "create_group and destroy_group are one script each and grow linearly with the group: "
        "creating checks that each member is an account (SISMEMBER) and reads its "
        "groups_per_user count (HLEN of its joined hash), then writes the group's members "
        "hash (1,000 fields per HSET) and one field in each member's own joined hash (an "
        "HSET per member: the price of per-entity keys, which 0.1's app-wide sorted sets "
        "batched 1,000 to a ZADD); destroying reads the members and removes the group from "
        "each member's joined and joined_free hashes (two HDELs each) after an UNLINK of the "
        "members hash. Python's share is "
        "validating the ids and building the arguments. Per member at p50: "
        + "; ".join(
            f"{step} {per_member[step][smallest]:.1f} us at {smallest:,}, "
            f"{per_member[step][largest]:.1f} us at {largest:,}"
            for step in (STEPS[0], STEPS[2])
        )
        + ".",
        f"add_members of {BATCH}: "
        f"{per_member[STEPS[1]][smallest] * BATCH / 1e3:.2f} ms into a group of {smallest:,}, "
        f"{per_member[STEPS[1]][largest] * BATCH / 1e3:.2f} ms into {largest:,}: its work is "
        "the batch (the group's size is one HLEN).",
        "A script runs alone on the server: a 6,000-member create or destroy holds Redis for "
        "about its server-side share of the time above (every other client waits that long).",
    ]
    return figure


if __name__ == "__main__":
    cli(run)
