"""The classical experiments meet their promises on real scikit-learn data."""


def test_linear_regression_matches_sklearn_and_closed_form(experiment):
    module = experiment("linear_regression")
    summary = module.run(module.get_config(), None)
    sklearn_r2 = summary["baselines"]["sklearn_linear_regression"]["test"]["r2"]
    assert abs(summary["metrics"]["test"]["r2"] - sklearn_r2) < 1e-3
    assert abs(summary["closed_form"]["test"]["r2"] - sklearn_r2) < 1e-3
    assert summary["max_abs_weight_difference_gd_vs_closed_form"] < 1e-2


def test_logistic_regression_at_least_sklearn(experiment):
    module = experiment("logistic_regression")
    summary = module.run(module.get_config(), None)
    sk = summary["baselines"]["sklearn_logistic_regression"]["test"]["accuracy"]
    assert summary["metrics"]["test"]["accuracy"] >= sk


def test_multinomial_logistic_regression_on_wine(experiment):
    module = experiment("logistic_regression")
    config = module.get_config()
    config.data.name = "wine"
    config.train.num_steps = 1000
    summary = module.run(config, None)
    sk = summary["baselines"]["sklearn_logistic_regression"]["test"]["accuracy"]
    assert summary["metrics"]["test"]["accuracy"] >= sk - 1e-9


def test_perceptron_converges_and_then_never_updates(experiment):
    module = experiment("perceptron")
    summary = module.run(module.get_config(), None)
    for mode in ("online", "batch"):
        assert summary["metrics_by_mode"][mode]["train"]["accuracy"] == 1.0
        assert summary["training"][mode]["converged"] is True
        assert summary["training"][mode]["updates"] > 0
        assert summary["training"][mode]["updates_after_convergence"] == 0


def test_mlp_digits_reaches_0975(experiment):
    module = experiment("mlp_digits")
    summary = module.run(module.get_config(), None)
    assert summary["metrics"]["test"]["accuracy"] >= 0.975
    assert summary["num_params"] == 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10


def test_depth_vs_width_equal_budgets(experiment):
    module = experiment("depth_vs_width")
    config = module.get_config()
    config.model.depths = (1, 3)
    config.seeds = 2
    config.train.num_epochs = 3
    summary = module.run(config, None)
    params = [row["num_params"] for row in summary["table"]]
    assert max(params) / min(params) < 1.05  # equal budgets within 5%
    assert all(row["seeds"] == 2 and 0.5 < row["accuracy_mean"] <= 1.0 for row in summary["table"])


def test_universal_approximation_error_falls_with_width(experiment):
    module = experiment("universal_approximation")
    config = module.get_config()
    config.model.widths = (1, 64)
    summary = module.run(config, None)
    narrow, wide = (row["test_mse"] for row in summary["table"])
    assert wide < narrow / 10
