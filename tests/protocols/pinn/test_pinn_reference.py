"""Reference solutions: ETDRK4 on a known solution, the Fourier evaluation, the exact convection
field, and agreement with Raissi's published .mat files where the data root has them."""
import numpy as np
import pytest

from entrobench.data.sources import default_data_root
from entrobench.protocols.pinn.problems import EQUATIONS, reference_grid
from entrobench.protocols.pinn.reference import (
    etdrk4,
    exact_convection,
    fourier_series,
    read_published,
    relative_l2,
    solve,
)

# our solution against the published one (relative L2 over the whole grid); see reference.py
AGREEMENT = {"allen_cahn": 5e-5, "burgers": 1e-8}


def test_etdrk4_matches_the_closed_form_of_uniform_allen_cahn():
    # u constant in x: u' = r u - r u^3, u(t) = u0 e^{rt} / sqrt(1 - u0^2 + u0^2 e^{2rt})
    r, u0, n = 5.0, 0.3, 16
    k = 2 * np.pi / 2.0 * np.arange(n // 2 + 1)
    linear = -1e-4 * k**2 + r
    times = np.array([0.1, 0.5, 1.0])
    coeffs = etdrk4(np.full(n, u0), linear, lambda v: np.fft.rfft(-r * np.fft.irfft(v, n) ** 3), 1e-3, times)
    exact = u0 * np.exp(r * times) / np.sqrt(1 - u0**2 + u0**2 * np.exp(2 * r * times))
    assert np.abs(coeffs[:, 0].real / n - exact).max() < 1e-9
    assert np.abs(coeffs[:, 1:]).max() < 1e-12  # nothing leaks into the other modes


def test_etdrk4_is_fourth_order_in_time():
    r, u0, n = 5.0, 0.3, 8
    linear = np.full(n // 2 + 1, r)
    exact = u0 * np.exp(r) / np.sqrt(1 - u0**2 + u0**2 * np.exp(2 * r))
    errors = [abs(etdrk4(np.full(n, u0), linear, lambda v: np.fft.rfft(-r * np.fft.irfft(v, n) ** 3), dt, np.array([1.0]))[0, 0].real / n - exact)
              for dt in (0.02, 0.01)]
    assert 13 < errors[0] / errors[1] < 19  # 2^4 = 16


def test_fourier_series_evaluates_a_trigonometric_polynomial_exactly_anywhere():
    n, grid = 32, -1 + 2 * np.arange(32) / 32
    f = lambda x: 0.5 + np.sin(3 * np.pi * x) - 0.25 * np.cos(16 * np.pi * x)
    x = np.array([-1.0, -0.3, 0.123, 0.77, 1.0])
    assert np.allclose(fourier_series(np.fft.rfft(f(grid)), n, x, -1.0, 2.0), f(x), atol=1e-12)


def test_exact_convection_is_sin_of_x_minus_beta_t_on_krishnapriyans_grid():
    x, t, u = exact_convection(30.0)
    assert len(x) == 256 and x[0] == 0 and x[-1] < 2 * np.pi and len(t) == 100 and t[-1] == 1.0
    assert u[37, 11] == pytest.approx(np.sin(x[11] - 30.0 * t[37]))


def test_burgers_reference_keeps_the_dirichlet_ends_and_steepens():
    x, _, u = solve("burgers", EQUATIONS["burgers"].coefficients, modes=512, dt=5e-4)
    assert np.abs(u[:, [0, -1]]).max() < 1e-10  # odd and 2-periodic: zero at x = -1, 1
    steepest = np.abs(np.diff(u[-1])).max() / (x[1] - x[0])
    assert steepest > 50  # the front at x = 0 (|u_x| of order 1 / nu at t = 0.99)


@pytest.mark.parametrize("equation", ["allen_cahn", "burgers"])
def test_solver_agrees_with_the_published_solution(equation):
    root = default_data_root()
    published = read_published(equation, root)
    if published is None:
        pytest.skip(f"{EQUATIONS[equation].data_file} is not under the data root ({root}); set ENTROBENCH_DATA_ROOT to run this")
    x, t, u = solve(equation, EQUATIONS[equation].coefficients, **EQUATIONS[equation].solver)
    assert np.allclose(x, published[0]) and np.allclose(t, published[1])
    assert relative_l2(u, published[2]) < AGREEMENT[equation]


def test_reference_grids_are_the_published_grids():
    x, t = reference_grid("allen_cahn")
    assert len(x) == 512 and x[0] == -1 and x[-1] == pytest.approx(1 - 2 / 512) and len(t) == 201
    x, t = reference_grid("burgers")
    assert len(x) == 256 and x[-1] == 1 and t[-1] == pytest.approx(0.99)
