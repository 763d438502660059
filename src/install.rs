//! Writing service files to disk: atomically, never over a foreign file without force.
