"""The LightGBM estimators (scikit-learn style) and what they see at fit and at score time."""
