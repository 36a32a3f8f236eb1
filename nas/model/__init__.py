"""Networks: the genotype, primitives, builder, analytic cost, export, references."""
