"""The packages of the wheel: every folder under the `labelagent` names that pyproject.toml's
package-dir maps to the repository's agent/, evals/ and review_ui/ folders."""

from setuptools import find_namespace_packages, setup

FOLDERS = {"labelagent": "agent", "labelagent.evals": "evals", "labelagent.review_ui": "review_ui"}
LEFT_OUT = ["benchmarks", "benchmarks.*", "*__pycache__*"]


def packages(name: str, folder: str) -> list[str]:
    return [name, *(f"{name}.{sub}" for sub in find_namespace_packages(folder, exclude=LEFT_OUT))]


setup(
    packages=[
        *(package for name, folder in FOLDERS.items() for package in packages(name, folder)),
        "labelagent._bundled.prompts",
        "labelagent._bundled.guidelines",
    ]
)
