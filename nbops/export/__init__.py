"""Exports of a promoted pipeline to the orchestrators teams already run (``nbops export``)."""
