"""Hostile submissions for the autograder, and the nbgrader course folders the tests grade them in."""
