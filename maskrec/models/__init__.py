"""The networks: ``nets`` holds each net as a layer table (the report's Net1 and Net2 and the
further rows), ``build`` turns a table into a torch module, ``checkpoint`` saves and loads one with
its recipe, threshold and operating points.
"""
