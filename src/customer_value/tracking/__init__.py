"""Everything MLflow, and nothing else imports mlflow below the jobs: the store (:mod:`.store`), what a run
records about itself (:mod:`.metadata`), the registered model (:mod:`.model`, :mod:`.pyfunc`) and the one
place that opens runs (:mod:`.runs`)."""
