"""Test sizes and tolerances in one place (with where each tolerance comes from)."""

#: Firing-rate table of rdd_model.md §1.1 (sigma = 10, x = 0, one neuron, 400-s runs in [S]).
RATE_TABLE_HZ = {5.0: 2.0, 10.0: 7.5, 15.0: 15.9, 20.0: 24.6}
#: Acceptance A1: rates within +-10 % of the table.
RATE_RTOL = 0.10
#: Acceptance A2: noise correlation equals c within +-0.01 over >= 1e5 steps
#: (the sampling sd of a correlation at n = 1e5 is (1 - c^2)/sqrt(n) <= 0.0032).
CORR_ATOL = 0.01
CORR_STEPS = 100_000
