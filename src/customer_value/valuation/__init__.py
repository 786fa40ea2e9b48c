"""The value model: fitted parts in, score rows out, components that add up, segments and drivers."""
