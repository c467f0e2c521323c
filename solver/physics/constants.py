"""Physical constants (SI, CODATA 2018 exact values)."""

#: molar gas constant, J/(mol K)
R_GAS = 8.314462618
#: Faraday constant, C/mol
FARADAY = 96485.33212
