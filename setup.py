"""Packaging for recbole-anchor.

The top-level ``properties/`` folder (model defaults, dataset presets, search spaces)
is shipped inside the package as ``recbole_anchor/properties`` so that a
non-editable ``pip install .`` finds the same files as a source checkout.
"""
from setuptools import setup

PROPERTY_FILES = ["*.yaml", "model/*.yaml", "dataset/*.yaml", "hyper/*.hyper"]

setup(
    name="recbole-anchor",
    version="0.1.0",
    description=(
        "RecBole plugin for anchor-regularized VAE recommenders (AnchorMultVAE), "
        "'On the Mechanisms of Collaborative Learning in VAE Recommenders' (ICLR 2026)"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=[
        "recbole_anchor",
        "recbole_anchor.comparison",
        "recbole_anchor.compat",
        "recbole_anchor.data",
        "recbole_anchor.evaluator",
        "recbole_anchor.diagnose",
        "recbole_anchor.model",
        "recbole_anchor.model.general_recommender",
        "recbole_anchor.properties",
        "recbole_anchor.trainer",
        "recbole_anchor.tuning",
    ],
    package_dir={"recbole_anchor.properties": "properties"},
    package_data={"recbole_anchor.properties": PROPERTY_FILES},
    install_requires=[
        "recbole==1.2.1",
        "torch>=2.6",
        "numpy>=2",
        "scipy",
        "pyyaml",
        "hyperopt>=0.2.7",
        "matplotlib",
        "optuna>=5",
        "sqlalchemy>=1.4.2",
    ],
    extras_require={
        # a PostgreSQL server as the study storage shared by workers on several machines
        "postgres": ["psycopg2-binary"],
        "test": ["pytest", "hypothesis", "psycopg2-binary"],
    },
    entry_points={
        "console_scripts": ["recbole-anchor=recbole_anchor.cli:main"],
    },
)
