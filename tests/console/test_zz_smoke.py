from tests.conftest import lead_body, API_KEY
def test_smoke(staff_client, client, auth):
    r = client.post("/leads", json=lead_body(name="<script>x</script> {{7*7}}"), headers=auth)
    lid = r.get_json()["id"]
    for url in ["/console/", "/console/board/rows", f"/console/leads/{lid}", "/console/reports", "/console/flows",
                "/console/flows/roofing", "/console/roster", "/console/try", "/console/health", "/console/users",
                "/console/reports/speed.csv", "/console/reports/reps.csv"]:
        resp = staff_client.get(url)
        print(url, resp.status_code)
        assert resp.status_code == 200, resp.get_data(as_text=True)[:3000]
