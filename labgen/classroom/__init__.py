"""labgen class: many student labs under one signed lab root (a Class model above Lab)."""
