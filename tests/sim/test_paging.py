"""ListMachines paging over thousands of machines (seeded through /__sim/seed-machines)."""

from sim.signer import client_for


def _page_through(client, query="", limit=1000):
    ids, pages, offset = [], [], 0
    while True:
        resp = client.get(f"/my/machines?limit={limit}&offset={offset}{query}")
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert resp.headers["x-query-limit"] == str(limit)
        assert resp.headers["x-resource-count"] == str(len(page))
        pages.append(len(page))
        ids += [m["id"] for m in page]
        if len(page) < limit:             # node-triton's stop condition
            return ids, pages
        offset += limit


def test_2500_machines_in_three_pages(tritonsim):
    c = client_for(tritonsim)
    seeded = tritonsim.seed_machines(2500, tags={"fleet": "paging", "n": 1}, name_prefix="pg-")
    assert seeded["count"] == 2500
    ids, pages = _page_through(c)
    assert pages == [1000, 1000, 500]
    assert len(set(ids)) == 2500
    assert ids[0] == seeded["first"] and ids[-1] == seeded["last"]
    tagged, dummy = _page_through(c, "&tag.fleet=paging&tag.n=1")
    assert tagged == ids
    page = c.get("/my/machines?limit=3&offset=2498").json()
    assert [m["id"] for m in page] == ids[2498:]
    m = page[0]
    assert m["state"] == "running" and m["name"].startswith("pg-") and len(m["nics"]) == 2
    assert len({tuple(x["ips"]) for x in c.get("/my/machines?limit=1000").json()}) == 1000


def test_10000_machines_list_completely(tritonsim):
    c = client_for(tritonsim)
    batches = [tritonsim.seed_machines(2500, tags={"batch": b}, name_prefix=f"big{b}-")
               for b in range(4)]
    ids, pages = _page_through(c)
    assert pages == [1000] * 10 + [0]
    assert len(ids) == len(set(ids)) == 10000
    # stable creation order: each batch is contiguous, in the order it was seeded
    for b, batch in enumerate(batches):
        assert ids[b * 2500] == batch["first"] and ids[b * 2500 + 2499] == batch["last"]
        in_batch, dummy = _page_through(c, f"&tag.batch={b}")
        assert in_batch == ids[b * 2500:(b + 1) * 2500]
