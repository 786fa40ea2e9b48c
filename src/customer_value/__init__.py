"""customer_value: what each customer is worth from now on, net of what it costs to serve."""

__version__ = "0.1.0"
