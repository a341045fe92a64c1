"""The Optuna user attributes of a gcsearch trial: one name each. The decider writes them; the run
directory, the pruner, `bench` and the tests read them. Pure Python.

Main study (one trial per proposal):
"""

ARCH = "arch"  # the configuration, ArchConfig.to_dict()
LABEL = "label"  # its one-line name, for optuna-dashboard
MACS = "macs"
PARAMS = "params"
LATENCY = "latency"  # ms of the whole model on the search's latency settings, measured by the trial before it trains
SEED = "seed"  # the training seed of a planned trial (ablation, record, confirm); absent = train.seed
TWIN = "twin"  # the twin trial's number: set once the trial trains, so "was trained" means "has a twin"
EPOCHS = "epochs"  # epochs finished
ACCURACY = "accuracy"  # the score at the last finished epoch
SECONDS = "seconds"
CURVE = "curve"  # every finished epoch's metrics (epoch.CURVE_FIELDS), for `bench` and the dashboard
PRUNED = "pruned"  # the pruner decided; survives a crash before the trial was told
DECIDED = "decided"  # epochs finished at the last "go on" of the pruner: a restart re-asks only after it
REASON = "reason"  # why a trial was pruned, failed, replaced or skipped, in words
DUPLICATE_OF = "duplicate_of"  # a proposal of a configuration already trained, by that trial's number
SKIPPED = "skipped"  # over the MAC budget: never trained
PREPROCESS = "preprocess"  # what inference needs of the trial's data (gcsearch/preprocess.py), JSON
ENV = "env"  # where the trial trained (nn/environment.describe(): torch and its build, threads, CPU, code), JSON
RESUMED_AT = "resumed_at_epochs"  # the epochs a restarted trial continued from

# Twin study (the single-objective study the pruner reads), besides MACS, PARAMS and LATENCY (its costs):
MAIN = "main"  # the main trial's number
